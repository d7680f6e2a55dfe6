//! CEL expressions of rules: compiled once, checked for names nobody provides, and evaluated
//! over an event's [`Facts`] in a scope that holds only the variables the expression reads.

use std::sync::Arc;

use cel::common::types::{CelBool, CelString};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Env, ExecutionError, Program, Value};

use crate::facts::{Facts, VARS, var_index};
use crate::glob::glob;
use crate::helpers;

/// The functions rules may call besides CEL's own, with what they do (for `docs/` and lint).
pub const FUNCTIONS: &[(&str, &str)] = &[
    (
        "glob(s, pattern)",
        "`*` matches any run of characters; the rest is literal",
    ),
    ("glob_any(s, patterns)", "some pattern of the list matches"),
    (
        "all_glob(list, patterns)",
        "the list is not empty and every item matches some pattern",
    ),
    ("capability(s)", "upper-cased, `CAP_` dropped"),
    (
        "normpath(s)",
        "repeated `/` collapsed, trailing `/` dropped",
    ),
    ("image_repo(s)", "the image without tag and digest"),
    (
        "tar_copy_out(list)",
        "the command is `kubectl cp` out of a pod (`tar cf - PATH`)",
    ),
    (
        "is_system_principal(s)",
        "the user name is a control-plane identity",
    ),
    (
        "obj(v)",
        "v when it is a map, else an empty map (so `obj(requestObject).?spec` never fails)",
    ),
    (
        "rules_of(v)",
        "the `rules` of a Role or ClusterRole body, `[]` when it has none",
    ),
];

/// How many compiled patterns `matches` keeps (per thread); beyond it the cache starts over.
const PATTERNS_KEPT: usize = 1024;

thread_local! {
    static PATTERNS: std::cell::RefCell<std::collections::HashMap<String, Result<regex::Regex, String>>> =
        std::cell::RefCell::default();
}

/// `s.matches(re)`: whether the RE2 pattern matches anywhere in `s`.
fn matches(this: &CelString<'_>, re: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    PATTERNS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !cache.contains_key(re.inner()) {
            if cache.len() >= PATTERNS_KEPT {
                cache.clear();
            }
            let compiled = regex::Regex::new(re.inner()).map_err(|e| e.to_string());
            cache.insert(re.inner().to_string(), compiled);
        }
        match &cache[re.inner()] {
            Ok(compiled) => Ok(CelBool::from(compiled.is_match(this.inner()))),
            Err(err) => Err(ExecutionError::FunctionError {
                function: "matches".to_string(),
                message: format!("'{}' not a valid regex:\n{err}", re.inner()),
            }),
        }
    })
}

/// The CEL environment and the root scope with kubetrail's functions.
pub struct Runtime {
    env: Arc<Env>,
    root: Context<'static, 'static>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runtime")
    }
}

fn list_strings(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l
            .iter()
            .map(|x| match x {
                Value::String(s) => s.to_string(),
                _ => String::new(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

impl Runtime {
    /// CEL's standard library, its strings extension and kubetrail's functions.
    pub fn new() -> Runtime {
        let mut env = Env::stdlib();
        // The strings extension gives lowerAscii, split, join, ... as Kubernetes' CEL has them.
        let _ = env.add_extension(cel::extensions::strings);
        // CEL's `matches` (RE2 syntax; the regex crate is RE2's semantics), both call styles,
        // with each pattern compiled once.
        let _ = cel::add_overload!(env, fn matches: (CelString, CelString) -> Result<CelBool>, id = "matches");
        let _ =
            cel::add_member_overload!(env, fn matches: (CelString, CelString) -> Result<CelBool>);
        let env = Arc::new(env);
        let mut root = Context::with_env(env.clone());
        // Names are ours and distinct from the standard ones, so registering cannot conflict.
        let _ = root.add_function("glob", |s: Arc<String>, p: Arc<String>| glob(&s, &p));
        let _ = root.add_function("glob_any", |s: Arc<String>, ps: Value| {
            list_strings(&ps).iter().any(|p| glob(&s, p))
        });
        let _ = root.add_function("all_glob", |items: Value, ps: Value| {
            let items = list_strings(&items);
            let ps = list_strings(&ps);
            !items.is_empty() && items.iter().all(|i| ps.iter().any(|p| glob(i, p)))
        });
        let _ = root.add_function("capability", |s: Arc<String>| helpers::capability(&s));
        let _ = root.add_function("normpath", |s: Arc<String>| helpers::normpath(&s));
        let _ = root.add_function("image_repo", |s: Arc<String>| {
            helpers::image_repo(&s).to_string()
        });
        let _ = root.add_function("tar_copy_out", |c: Value| {
            helpers::tar_copy_out(&list_strings(&c))
        });
        let _ = root.add_function("is_system_principal", |s: Arc<String>| {
            helpers::system_principal(&s)
        });
        let _ = root.add_function("obj", |v: Value| match v {
            Value::Map(_) => v,
            _ => Value::Map(cel::objects::Map {
                map: Arc::default(),
            }),
        });
        let _ = root.add_function("rules_of", |v: Value| helpers::rules_of(&v));
        Runtime { env, root }
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new()
    }
}

/// A rule's parameters as a CEL map, converted once for every evaluation.
pub struct Params {
    /// The parameters.
    pub value: Value,
    val: Option<Box<dyn Val>>,
}

impl Params {
    /// Parameters from a CEL value (a map).
    pub fn new(value: Value) -> Params {
        let val = Box::<dyn Val>::try_from(value.clone()).ok();
        Params { value, val }
    }
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Params({:?})", self.value)
    }
}

/// The variables one evaluation reads, lent by name.
struct Bound<'a> {
    vars: &'a [usize],
    vals: &'a [Option<&'a dyn Val>],
    params: Option<&'a dyn Val>,
}

impl VariableResolver for Bound<'_> {
    fn resolve<'b>(&'b self, name: &str) -> Option<CowVal<'b, 'b>> {
        if name == "params" {
            return self.params.map(CowVal::Borrowed);
        }
        let at = self.vars.iter().position(|&i| VARS[i] == name)?;
        self.vals[at].map(CowVal::Borrowed)
    }
}

/// A compiled expression.
pub struct Expr {
    /// The expression as written.
    pub source: String,
    program: Program,
    vars: Vec<usize>,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

/// Names bound by comprehension macros (`list.exists(c, ...)` binds `c`).
fn bound_names(source: &str) -> Vec<&str> {
    let mut names = Vec::new();
    for m in ["exists(", "all(", "exists_one(", "map(", "filter("] {
        let mut rest = source;
        while let Some(at) = rest.find(m) {
            let after = &rest[at + m.len()..];
            if rest[..at].ends_with('.') {
                let name = after.split(',').next().unwrap_or("").trim();
                if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    names.push(name);
                }
            }
            rest = after;
        }
    }
    names
}

impl Expr {
    /// Compiles an expression; an error says where the syntax is wrong, or which name is
    /// unknown (with the closest known one).
    pub fn compile(runtime: &Runtime, source: &str) -> Result<Expr, String> {
        let program = runtime.env.compile(source).map_err(|e| e.to_string())?;
        let bound = bound_names(source);
        let mut vars = Vec::new();
        for name in program.references().variables() {
            if name == "params" || bound.contains(&name) {
                continue;
            }
            match var_index(name) {
                Some(i) => vars.push(i),
                None => {
                    let hint = VARS
                        .iter()
                        .copied()
                        .chain(["params"])
                        .map(|v| (strsim::jaro_winkler(v, name), v))
                        .filter(|(score, _)| *score > 0.8)
                        .max_by(|a, b| a.0.total_cmp(&b.0))
                        .map(|(_, v)| format!(" (did you mean {v:?}?)"))
                        .unwrap_or_default();
                    return Err(format!("unknown name {name:?}{hint}"));
                }
            }
        }
        Ok(Expr {
            source: source.to_string(),
            program,
            vars,
        })
    }

    /// Evaluates the expression over an event with the rule's parameters.
    pub fn eval(&self, runtime: &Runtime, facts: &Facts, params: &Params) -> Result<Value, String> {
        // The variables are converted once per event (in `facts`) and lent to the program,
        // not copied into its scope.
        // Most expressions read a few variables: those are lent from the stack.
        let mut few: [Option<&dyn Val>; 12] = [None; 12];
        let many: Vec<Option<&dyn Val>>;
        let vals: &[Option<&dyn Val>] = if self.vars.len() <= few.len() {
            for (slot, &i) in few.iter_mut().zip(&self.vars) {
                *slot = facts.val(i);
            }
            &few[..self.vars.len()]
        } else {
            many = self.vars.iter().map(|&i| facts.val(i)).collect();
            &many
        };
        let bound = Bound {
            vars: &self.vars,
            vals,
            params: params.val.as_deref(),
        };
        let root: &Context<'_, '_> = &runtime.root;
        let mut scope = root.new_inner_scope();
        scope.set_variable_resolver(&bound);
        self.program.execute(&scope).map_err(|e| format!("{e:?}"))
    }

    /// Evaluates a condition: it must give a bool.
    pub fn test(&self, runtime: &Runtime, facts: &Facts, params: &Params) -> Result<bool, String> {
        match self.eval(runtime, facts, params)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!("the condition gave {other:?}, not a bool")),
        }
    }

    /// Evaluates a key: a string (other values are written as CEL would print them).
    pub fn key(&self, runtime: &Runtime, facts: &Facts, params: &Params) -> Result<String, String> {
        Ok(match self.eval(runtime, facts, params)? {
            Value::String(s) => s.to_string(),
            other => format!("{other:?}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_refused_with_a_hint_and_macro_names_are_not_unknown() {
        let rt = Runtime::new();
        let err = Expr::compile(&rt, "containres.exists(c, c.name == 'x')").unwrap_err();
        assert!(
            err.contains("\"containres\"") && err.contains("did you mean \"containers\""),
            "{err}"
        );
        assert!(Expr::compile(&rt, "containers.exists(c, c.name == params.x)").is_ok());
        let err = Expr::compile(&rt, "verb ==").unwrap_err();
        assert!(err.contains("1:8"), "{err}");
    }

    #[test]
    fn matches_is_cels_in_both_call_styles_and_a_bad_pattern_is_an_error() {
        let rt = Runtime::new();
        let event = kubetrail_model::decode_event(br#"{"verb":"delete"}"#).unwrap();
        let facts = Facts::new(&event);
        let params = Params::new(Value::Null);
        let run = |src: &str| Expr::compile(&rt, src).unwrap().eval(&rt, &facts, &params);
        assert_eq!(run("verb.matches('^del')"), Ok(Value::Bool(true)));
        assert_eq!(run("matches(verb, 'et')"), Ok(Value::Bool(true)));
        assert_eq!(run("verb.matches('^get$')"), Ok(Value::Bool(false)));
        // The second call takes the cached pattern and gives the same answer.
        assert_eq!(
            run("verb.matches('^del') && verb.matches('^del')"),
            Ok(Value::Bool(true))
        );
        let err = run("verb.matches('(del')").unwrap_err();
        assert!(err.contains("not a valid regex"), "{err}");
    }
}
