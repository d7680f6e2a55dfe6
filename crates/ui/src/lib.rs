//! The web UI: the audit centre's pages, rendered on the server as HTML with SVG charts.
//!
//! Pages are plain functions from a [`Context`] (the store, the viewer, the time) and the
//! request's query string to HTML. Everything they show comes from the store through the same
//! typed filters and reports as the command line and the HTTP API, so a number on a page is the
//! number the API answers. Authentication, sessions and routing live in the server; this crate
//! only renders.
//!
//! Audit data is attacker-controlled text (user agents, names, annotations): every value goes
//! through maud's escaping, links are always built from our own paths plus URL-encoded
//! parameters, and the pages carry no script at all (charts are SVG with `<title>` tooltips,
//! collapsible JSON is `<details>`), so the server can forbid scripts outright in its
//! Content-Security-Policy.

mod alerts;
mod changes;
mod chart;
mod counts;
mod event;
mod fleet;
mod format;
mod history;
mod layout;
mod overview;
mod permissions;
mod resources;
mod scope;
mod search;
mod user;

use kubetrail_api::wire::Gap;
use kubetrail_store::Store;

pub use kubetrail_report::Networks;
pub use layout::login_page;
pub use scope::Range;

/// The stylesheet, served at [`STYLE_PATH`].
pub const STYLE_CSS: &str = include_str!("../assets/style.css");

/// Where pages link the stylesheet.
pub const STYLE_PATH: &str = "/assets/style.css";

/// The icon, served at [`ICON_PATH`].
pub const ICON_SVG: &str = include_str!("../assets/icon.svg");

/// Where pages link the icon.
pub const ICON_PATH: &str = "/assets/icon.svg";

/// Who is looking.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Token name (shown in the header).
    pub name: String,
    /// The only cluster the viewer may see, if bound.
    pub cluster: Option<String>,
    /// Whether the viewer signed in with a session (and so can sign out).
    pub session: bool,
}

impl Viewer {
    /// Narrows `filter` to what the viewer may read ([`Filter::restrict_to`]); a filter naming
    /// another cluster than the bound one is refused.
    ///
    /// [`Filter::restrict_to`]: kubetrail_store::Filter::restrict_to
    pub fn restrict(&self, filter: &mut kubetrail_store::Filter) -> Result<(), UiError> {
        filter
            .restrict_to(&kubetrail_store::ReadScope::of(self.cluster.as_deref()))
            .map_err(|e| UiError::Forbidden(format!("{} {e}", self.name)))
    }
}

/// The trail's integrity as the server's checks of the hash chain found it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Integrity {
    /// When it was last checked (RFC 3339); `None` before the first check ended.
    pub checked_at: Option<String>,
    /// The newest problems found since the server started: (cluster, what).
    pub problems: Vec<(String, String)>,
    /// Per cluster: the links and the events the last check verified.
    pub clusters: Vec<(String, u64, u64)>,
    /// Why the last check could not run.
    pub error: Option<String>,
}

/// What a page is rendered from.
pub struct Context<'a> {
    /// The events.
    pub store: &'a dyn Store,
    /// Now, in microseconds since the epoch (ranges such as "last 24h" end here).
    pub now_micros: i64,
    /// Who is looking.
    pub viewer: &'a Viewer,
    /// Source addresses counted as internal.
    pub networks: &'a Networks,
    /// Collection gaps the agents reported (for the overview and the fleet page).
    pub gaps: &'a [Gap],
    /// The agents' last statuses (for the fleet page).
    pub agents: &'a [kubetrail_api::wire::AgentView],
    /// The detection rules the server runs, for the pages that name rules (Alerts, Rules);
    /// `None` when it runs none, and for the other pages.
    pub rules: Option<&'a [kubetrail_api::wire::RuleItem]>,
    /// The clusters the store holds events of (the viewer's own, when bound to one), for the
    /// scope bar's cluster picker; empty for a free-text cluster field.
    pub clusters: &'a [String],
    /// The cluster's RBAC, for the user page's permissions (or why it cannot be shown: a
    /// snapshot of another cluster, a trail spanning several); `None` when the server knows
    /// none, and for the other pages.
    pub rbac: Option<Result<&'a kubetrail_rbac::RbacObjects, &'a str>>,
    /// The resources the store names, counted at most once a minute (resource names in a
    /// page's filter are resolved against them).
    pub resources: &'a kubetrail_report::ResourceCache,
    /// The hash chain's checks, for the overview; `None` when the server keeps no chain, and
    /// for the other pages.
    pub integrity: Option<&'a Integrity>,
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// A bad parameter (named in the message).
    #[error("{0}")]
    BadRequest(String),
    /// The viewer may not see this.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing there.
    #[error("{0}")]
    NotFound(String),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(kubetrail_store::Error),
    /// A bug: rendering itself failed.
    #[error("{0}")]
    Internal(String),
}

impl From<kubetrail_store::Error> for UiError {
    fn from(e: kubetrail_store::Error) -> Self {
        UiError::Store(e)
    }
}

impl UiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            UiError::BadRequest(_) => 400,
            UiError::Forbidden(_) => 403,
            UiError::NotFound(_) => 404,
            UiError::Internal(_) => 500,
            UiError::Store(e) => match e.kind() {
                kubetrail_store::ErrorKind::Invalid => 400,
                kubetrail_store::ErrorKind::Unavailable => 503,
                kubetrail_store::ErrorKind::Internal => 500,
            },
        }
    }
}

/// The pages, by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `/`: the overview.
    Overview,
    /// `/resources`: writes per resource kind.
    Resources,
    /// `/search`: the typed filter and its results.
    Search,
    /// `/event`: one event, whole.
    Event,
    /// `/user`: one identity's activity.
    User,
    /// `/history`: every write to one object.
    History,
    /// `/changes`: what the newest writes changed.
    Changes,
    /// `/alerts`: what the detection rules raised.
    Alerts,
    /// `/rules`: the detection rules.
    Rules,
    /// `/fleet`: every cluster's activity, agents and gaps.
    Fleet,
}

impl Page {
    /// Every page.
    pub const ALL: [Page; 10] = [
        Page::Overview,
        Page::Resources,
        Page::Search,
        Page::Event,
        Page::User,
        Page::History,
        Page::Changes,
        Page::Alerts,
        Page::Rules,
        Page::Fleet,
    ];

    /// The page's path.
    pub fn path(self) -> &'static str {
        match self {
            Page::Overview => "/",
            Page::Resources => "/resources",
            Page::Search => "/search",
            Page::Event => "/event",
            Page::User => "/user",
            Page::History => "/history",
            Page::Changes => "/changes",
            Page::Alerts => "/alerts",
            Page::Rules => "/rules",
            Page::Fleet => "/fleet",
        }
    }

    /// The page at `path`.
    pub fn at(path: &str) -> Option<Page> {
        Page::ALL.into_iter().find(|p| p.path() == path)
    }
}

/// Renders `page` for the query string `query` (without the `?`), as a whole HTML document.
pub fn render(page: Page, ctx: &Context<'_>, query: &str) -> Result<String, UiError> {
    let markup = match page {
        Page::Overview => overview::render(ctx, query)?,
        Page::Resources => resources::render(ctx, query)?,
        Page::Search => search::render(ctx, query)?,
        Page::Event => event::render(ctx, query)?,
        Page::User => user::render(ctx, query)?,
        Page::History => history::render(ctx, query)?,
        Page::Changes => changes::render(ctx, query)?,
        Page::Alerts => alerts::render(ctx, query)?,
        Page::Rules => alerts::render_rules(ctx, query)?,
        Page::Fleet => fleet::render(ctx, query)?,
    };
    Ok(markup.into_string())
}

/// An error page for `error`, as a whole HTML document.
pub fn error_page(viewer: Option<&Viewer>, error: &UiError) -> String {
    layout::error_page(viewer, error).into_string()
}
