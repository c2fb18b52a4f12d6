//! The colleagues panel's data, for the desktop app and the CLI alike: people search with a
//! dialable address for each, their photos, favourites kept on disk, and the Teams presence of
//! the colleagues on show, polled within the tenant's budget (docs/graph.md).
//!
//! [`Colleagues`] holds a signed-in Microsoft 365 session and renews its access token as Graph
//! needs; [`watch_presence`] is the thin async loop around `graph_client::presence::Poller`
//! (the sans-IO schedule, tested in virtual time there); [`Favourites`] is a small JSON file in
//! the user's data directory, replaced whole on every change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use graph_client::Token;
use graph_client::dial::{Colleague, DialRule};
use graph_client::graph::{Graph, GraphError, User};
use graph_client::presence::{PollSettings, Poller, Presence};
use serde::{Deserialize, Serialize};

use crate::files;
use crate::m365::{M365, M365Error, Session};
use crate::photos::PhotoCache;

/// A colleague as the panel shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// Their Microsoft Entra object id.
    pub id: String,
    pub name: String,
    /// Their user principal name (sign-in address).
    pub username: Option<String>,
    pub mail: Option<String>,
    /// Job title and department: only with User.Read.All.
    pub job_title: Option<String>,
    pub department: Option<String>,
    /// What calling them dials (the `[teams]` rule), or `None` with the reason in
    /// `dial_error`.
    pub dial: Option<String>,
    pub dial_error: Option<String>,
}

impl Person {
    /// A Graph user as the panel shows them, dialled by `rule`.
    pub fn from_user(user: &User, rule: &DialRule) -> Self {
        let colleague = Colleague {
            object_id: &user.id,
            user_principal_name: user.user_principal_name.as_deref().unwrap_or_default(),
            mail: user.mail.as_deref(),
            business_phones: &user.business_phones,
            mobile_phone: user.mobile_phone.as_deref(),
        };
        let (dial, dial_error) = dial_by(rule, &colleague);
        let name = user
            .display_name
            .clone()
            .or_else(|| user.user_principal_name.clone())
            .unwrap_or_else(|| user.id.clone());
        Self {
            id: user.id.clone(),
            name,
            username: user.user_principal_name.clone(),
            mail: user.mail.clone(),
            job_title: user.job_title.clone(),
            department: user.department.clone(),
            dial,
            dial_error,
        }
    }
}

impl Person {
    /// Works out their address again by `rule` as it is now (a favourite kept for months, a
    /// rule policy changed since). A phone-number rule needs their numbers, which are not kept:
    /// then the address from when they were marked stays.
    pub fn redial(&mut self, rule: &DialRule) {
        if !matches!(rule, DialRule::SipUri { .. }) {
            return;
        }
        let colleague = Colleague {
            object_id: &self.id,
            user_principal_name: self.username.as_deref().unwrap_or_default(),
            mail: self.mail.as_deref(),
            business_phones: &[],
            mobile_phone: None,
        };
        (self.dial, self.dial_error) = dial_by(rule, &colleague);
    }
}

/// What calling `colleague` dials by `rule`, or why there is nothing (the two fields of
/// [`Person`]).
fn dial_by(rule: &DialRule, colleague: &Colleague<'_>) -> (Option<String>, Option<String>) {
    match rule.address(colleague) {
        Ok(dialable) => (Some(dialable.uri), None),
        Err(error) => (None, Some(error.to_string())),
    }
}

/// Why the colleagues could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ColleaguesError {
    /// Not signed in, or the sign-in must be done again.
    #[error(transparent)]
    SignIn(#[from] M365Error),
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// Whether a search read full profiles (User.Read.All) or only the basic ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub enum Profile {
    Full,
    Basic,
}

/// The signed-in user's view of their colleagues through Microsoft Graph.
#[derive(Debug)]
pub struct Colleagues {
    m365: M365,
    graph: Graph,
    session: tokio::sync::Mutex<Session>,
    /// The signed-in user's object id (their own presence comes with the colleagues').
    own_id: String,
    rule: DialRule,
    photos: Option<PhotoCache>,
    /// Set at sign-out: nothing more is asked of Graph, and no token is renewed (renewing
    /// would keep the new refresh token in the keyring, signing the user in again).
    closed: std::sync::atomic::AtomicBool,
}

impl Colleagues {
    /// Resumes the stored sign-in (renewing its access token) and finds Microsoft Graph.
    ///
    /// # Errors
    /// Not signed in, the sign-in must be done again, or the identity platform is unreachable.
    pub async fn connect(
        m365: M365,
        rule: DialRule,
        photos: Option<PhotoCache>,
    ) -> Result<Self, ColleaguesError> {
        let session = m365.resume().await?;
        let graph = m365.identity().graph().await.map_err(M365Error::from)?;
        let own_id = session.account.object_id.clone();
        Ok(Self {
            m365,
            graph,
            session: tokio::sync::Mutex::new(session),
            own_id,
            rule,
            photos,
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Stops all further use of the sign-in: no more requests, and no token renewed (which
    /// would keep a new refresh token in the keyring after sign-out).
    pub fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// A current access token (renewed if due), or `NotSignedIn` once closed.
    async fn token(&self, renew: bool) -> Result<Token, M365Error> {
        let mut session = self.session.lock().await;
        // Checked with the session held: a close cannot slip in between this and a renewal.
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(M365Error::NotSignedIn);
        }
        if renew {
            self.m365.renewed_token(&mut session).await
        } else {
            self.m365.access_token(&mut session).await
        }
    }

    /// The signed-in user's object id.
    pub fn own_id(&self) -> &str {
        &self.own_id
    }

    /// Calls `request` with a current access token; a token Graph refuses before its time
    /// (revoked, or this machine's clock is off) is renewed once and the call made again.
    async fn with_token<T, F, Fut>(&self, request: F) -> Result<T, ColleaguesError>
    where
        F: Fn(Token) -> Fut,
        Fut: std::future::Future<Output = Result<T, GraphError>>,
    {
        let token = self.token(false).await?;
        match request(token).await {
            Err(GraphError::Unauthorized { .. }) => {
                tracing::info!("Graph refused the access token; renewing it");
                let token = self.token(true).await?;
                Ok(request(token).await?)
            }
            other => Ok(other?),
        }
    }

    /// Up to `limit` people whose name or address starts with `text`, asked for in pages of
    /// `page_size` (following `@odata.nextLink`), with the full profile when the tenant granted
    /// User.Read.All and the basic one otherwise (also after a 403).
    ///
    /// # Errors
    /// The sign-in or Graph failed.
    pub async fn search(
        &self,
        text: &str,
        limit: u32,
        page_size: u32,
    ) -> Result<(Vec<Person>, Profile), ColleaguesError> {
        let limit = limit.max(1);
        let page_size = page_size.clamp(1, 999).min(limit);
        let full = M365::granted(&*self.session.lock().await, "User.Read.All");
        let search = |full: bool| {
            self.with_token(move |token| {
                let graph = self.graph.clone();
                let text = text.to_owned();
                async move { graph.search_users(&token, &text, full, page_size).await }
            })
        };
        let (mut page, profile) = match search(full).await {
            Ok(page) => (page, if full { Profile::Full } else { Profile::Basic }),
            Err(ColleaguesError::Graph(GraphError::Forbidden { .. })) if full => {
                tracing::info!("no User.Read.All consent: searching basic profiles");
                (search(false).await?, Profile::Basic)
            }
            Err(error) => return Err(error),
        };
        let mut people: Vec<Person> =
            page.value.iter().map(|u| Person::from_user(u, &self.rule)).collect();
        while people.len() < limit as usize {
            let Some(next) = page.next_link.take() else { break };
            page = self
                .with_token(|token| {
                    let graph = self.graph.clone();
                    let next = next.clone();
                    async move { graph.next_page::<User>(&token, &next).await }
                })
                .await?;
            people.extend(page.value.iter().map(|u| Person::from_user(u, &self.rule)));
        }
        people.truncate(limit as usize);
        Ok((people, profile))
    }

    /// The cached photo of `id` (fetched from Graph when not fresh); `None` when they have
    /// none, when there is no cache, or when it cannot be had (logged).
    pub async fn photo(&self, id: &str) -> Option<PathBuf> {
        let cache = self.photos.as_ref()?;
        let token = match self.token(false).await {
            Ok(token) => token,
            Err(error) => {
                tracing::warn!(%error, "no token for a photo");
                return None;
            }
        };
        match cache.photo(&self.graph, &token, id).await {
            Ok(path) => path,
            Err(error) => {
                tracing::warn!(%error, "no photo");
                None
            }
        }
    }

    /// The presence of `ids`, in requests of up to 650. What the answered requests carried
    /// comes back even when a later one failed.
    pub async fn presences(&self, ids: &[String]) -> (Vec<Presence>, Option<ColleaguesError>) {
        let token = match self.token(false).await {
            Ok(token) => token,
            Err(error) => return (Vec::new(), Some(error.into())),
        };
        let mut answer = self.graph.presences_of_all(&token, ids).await;
        if let Some(GraphError::Unauthorized { .. }) = answer.error {
            tracing::info!("Graph refused the access token; renewing it");
            match self.token(true).await {
                Ok(token) => answer = self.graph.presences_of_all(&token, ids).await,
                Err(error) => return (answer.presences, Some(error.into())),
            }
        }
        (answer.presences, answer.error.map(ColleaguesError::from))
    }
}

impl Colleagues {
    /// Writes this app's presence session for the signed-in user (`setPresence`, the app's
    /// client id as the session id) for `expiration`.
    ///
    /// # Errors
    /// The sign-in or Graph failed (Presence.ReadWrite not granted: `Forbidden`).
    pub async fn set_own_presence(
        &self,
        activity: graph_client::presence::Activity,
        expiration: std::time::Duration,
    ) -> Result<(), ColleaguesError> {
        let (availability, activity) = activity.graph_values();
        let session = &self.m365.identity().settings().client_id;
        self.with_token(|token| {
            let graph = self.graph.clone();
            async move {
                graph
                    .set_presence(&token, &self.own_id, session, availability, activity, expiration)
                    .await
            }
        })
        .await
    }

    /// Clears this app's presence session: Teams shows the user's own presence alone again.
    ///
    /// # Errors
    /// The sign-in or Graph failed.
    pub async fn clear_own_presence(&self) -> Result<(), ColleaguesError> {
        let session = &self.m365.identity().settings().client_id;
        self.with_token(|token| {
            let graph = self.graph.clone();
            async move { graph.clear_presence(&token, &self.own_id, session).await }
        })
        .await
    }
}

/// What the panel wants watched: the colleagues on show, and whether the panel is visible
/// (hidden, it is polled at the background pace).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watched {
    pub ids: Vec<String>,
    pub visible: bool,
}

/// What a poll found: presences that changed since the last report (the signed-in user's own
/// among them, as `own`), or why it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct PresenceReport {
    pub changed: Vec<PresenceOf>,
    pub own: Option<PresenceOf>,
    /// The last poll's failure (the poller is backing off), `None` once it succeeds.
    pub error: Option<String>,
}

/// One user's presence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "camelCase")]
pub struct PresenceOf {
    pub id: String,
    pub availability: String,
    pub activity: String,
}

impl From<&Presence> for PresenceOf {
    fn from(p: &Presence) -> Self {
        Self {
            id: p.id.clone(),
            availability: p.availability.clone(),
            activity: p.activity.clone(),
        }
    }
}

/// The first poll after the watch starts comes within this (at a random point, so that agents
/// signing in together do not poll together): the panel has nothing to show until then.
const FIRST_POLL_WITHIN: Duration = Duration::from_secs(2);

/// Polls the presence of what `watched` names, plus the signed-in user's own (in the same
/// requests), at the pace `settings` allow for the watched count, backing off on 429/503 and
/// failures; reports changes to `report`. Runs until `watched`'s sender goes. Colleagues never
/// asked about yet (a new search's) are asked about at the next poll the budget allows, never
/// sooner than the visible pace after the last poll.
pub async fn watch_presence(
    colleagues: Arc<Colleagues>,
    mut watched: tokio::sync::watch::Receiver<Watched>,
    settings: PollSettings,
    seed: u64,
    report: impl Fn(PresenceReport),
) {
    let started = tokio::time::Instant::now();
    let floor = settings.min_interval_visible;
    let ids = |w: &Watched| {
        let mut seen = std::collections::HashSet::new();
        std::iter::once(colleagues.own_id())
            .chain(w.ids.iter().map(String::as_str))
            .filter(|id| seen.insert(*id))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let mut current = watched.borrow_and_update().clone();
    let mut poll_ids = ids(&current);
    let interval = settings.interval(poll_ids.len(), current.visible);
    let mut poller = Poller::new(settings, poll_ids.len(), current.visible, seed);
    // The poller's first poll is at a random part of an interval: the same part of
    // FIRST_POLL_WITHIN (or sooner, when the interval is shorter still).
    let part = poller.next_poll().as_secs_f64() / interval.as_secs_f64().max(f64::EPSILON);
    let mut next = started + poller.next_poll().min(FIRST_POLL_WITHIN.mul_f64(part.min(1.0)));
    let mut last_poll: Option<Duration> = None;
    // Every id asked about, answered or not: only others make a poll come early.
    let mut asked: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut known: HashMap<String, PresenceOf> = HashMap::new();
    let mut failing = false;
    loop {
        tokio::select! {
            changed = watched.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = started.elapsed();
                let new = watched.borrow_and_update().clone();
                let newcomers = new.ids.iter().any(|id| !asked.contains(id));
                poll_ids = ids(&new);
                poller.set_visible(now, new.visible, poll_ids.len());
                let mut at = poller.next_poll();
                if newcomers && !failing {
                    let earliest = last_poll.map_or(now, |last| (last + floor).max(now));
                    at = at.min(earliest);
                }
                // A change never puts off a poll that was due sooner (the first one, which
                // must come within FIRST_POLL_WITHIN, above all: the window says what it shows
                // right after the task starts, and that must not push it to the slow pace).
                next = next.min(started + at);
                current = new;
                continue;
            }
            () = tokio::time::sleep_until(next) => {}
        }
        let (presences, error) = colleagues.presences(&poll_ids).await;
        let now = started.elapsed();
        last_poll = Some(now);
        asked.extend(poll_ids.iter().cloned());
        let mut changed = Vec::new();
        let mut own = None;
        for presence in &presences {
            let presence = PresenceOf::from(presence);
            if known.get(&presence.id) == Some(&presence) {
                continue;
            }
            known.insert(presence.id.clone(), presence.clone());
            if presence.id == colleagues.own_id() {
                own = Some(presence.clone());
            }
            if current.ids.contains(&presence.id) {
                changed.push(presence);
            }
        }
        let error = match error {
            None => {
                poller.on_success(now, poll_ids.len());
                None
            }
            // Signed out (closed): nothing more to poll.
            Some(ColleaguesError::SignIn(M365Error::NotSignedIn)) => return,
            Some(ColleaguesError::Graph(
                GraphError::Throttled { retry_after } | GraphError::Unavailable { retry_after, .. },
            )) => {
                tracing::warn!(?retry_after, "presence polling throttled; backing off");
                poller.on_throttled(now, retry_after, poll_ids.len());
                Some("Microsoft Graph asked to slow down".to_owned())
            }
            Some(error) => {
                tracing::warn!(%error, "presence poll failed; backing off");
                poller.on_failure(now, poll_ids.len());
                Some(error.to_string())
            }
        };
        if !changed.is_empty() || own.is_some() || error.is_some() != failing {
            report(PresenceReport { changed, own, error: error.clone() });
        }
        failing = error.is_some();
        next = started + poller.next_poll();
    }
}

/// The colleagues the agent marked, kept in `favourites.json` in the data directory (mode
/// 0600), in the order they were added.
#[derive(Debug)]
pub struct Favourites {
    path: PathBuf,
    people: Vec<Person>,
}

/// The favourites file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("the favourites file {path}: {source}")]
pub struct FavouritesError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Favourites kept, at most: with the agent's own id they fill one `getPresencesByUserId`
/// request (650 ids).
pub const MAX_FAVOURITES: usize = graph_client::presence::MAX_IDS_PER_REQUEST - 1;

#[derive(Serialize, Deserialize)]
struct FavouritesFile {
    version: u32,
    people: Vec<Person>,
}

impl Favourites {
    /// The favourites at `path`, none when there is no file. A file that does not read (edited
    /// by hand, a future version's) is kept aside as `favourites.json.unreadable` rather than
    /// overwritten later, and the list starts empty.
    ///
    /// # Errors
    /// The file exists but cannot be read at all.
    pub fn open(path: &Path) -> Result<Self, FavouritesError> {
        let error = |source| FavouritesError { path: path.to_owned(), source };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self { path: path.to_owned(), people: Vec::new() });
            }
            Err(e) => return Err(error(e)),
        };
        let people = match serde_json::from_slice::<FavouritesFile>(&bytes) {
            Ok(file) => file.people,
            Err(parse) => {
                let mut aside = path.as_os_str().to_owned();
                aside.push(".unreadable");
                tracing::warn!(path = %path.display(), %parse, "the favourites file does not read; kept aside");
                std::fs::rename(path, &aside).map_err(error)?;
                Vec::new()
            }
        };
        Ok(Self { path: path.to_owned(), people })
    }

    /// The favourites, in the order they were added.
    pub fn people(&self) -> &[Person] {
        &self.people
    }

    pub fn contains(&self, id: &str) -> bool {
        self.people.iter().any(|p| p.id == id)
    }

    /// Adds `person` (or updates what is kept of them) or removes them, and saves.
    ///
    /// # Errors
    /// The file could not be written (the list in memory is left as it was), or there are
    /// [`MAX_FAVOURITES`] already.
    pub fn set(&mut self, person: Person, favourite: bool) -> Result<(), FavouritesError> {
        let mut people = self.people.clone();
        match (people.iter().position(|p| p.id == person.id), favourite) {
            (Some(i), true) => people[i] = person,
            (None, true) if people.len() >= MAX_FAVOURITES => {
                return Err(FavouritesError {
                    path: self.path.clone(),
                    source: std::io::Error::other(format!(
                        "at most {MAX_FAVOURITES} favourites are kept"
                    )),
                });
            }
            (None, true) => people.push(person),
            (Some(i), false) => {
                people.remove(i);
            }
            (None, false) => return Ok(()),
        }
        let file = FavouritesFile { version: 1, people };
        let json = serde_json::to_vec_pretty(&file)
            .map_err(|e| FavouritesError { path: self.path.clone(), source: e.into() })?;
        files::replace(&self.path, &json)
            .map_err(|source| FavouritesError { path: self.path.clone(), source })?;
        self.people = file.people;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str, name: &str) -> Person {
        Person {
            id: id.into(),
            name: name.into(),
            username: Some(format!("{name}@contoso.example")),
            mail: None,
            job_title: None,
            department: None,
            dial: Some(format!("sip:{name}@contoso.example")),
            dial_error: None,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("switchboard-favourites-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("favourites.json")
    }

    #[test]
    fn favourites_are_kept_in_order_updated_in_place_and_removed() {
        let path = temp("order");
        let mut favourites = Favourites::open(&path).expect("no file yet");
        assert!(favourites.people().is_empty());
        favourites.set(person("1", "adele"), true).expect("add");
        favourites.set(person("2", "megan"), true).expect("add");
        let mut renamed = person("1", "adele");
        renamed.job_title = Some("Retail Manager".into());
        favourites.set(renamed.clone(), true).expect("update");
        let again = Favourites::open(&path).expect("reads");
        assert_eq!(again.people(), [renamed, person("2", "megan")]);
        favourites.set(person("1", "adele"), false).expect("remove");
        favourites.set(person("9", "nobody"), false).expect("removing a stranger is nothing");
        assert_eq!(Favourites::open(&path).expect("reads").people(), [person("2", "megan")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!path.with_extension("json.partial").exists());
    }

    #[test]
    fn an_unreadable_file_is_kept_aside_not_overwritten() {
        let path = temp("unreadable");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("dir");
        std::fs::write(&path, b"{ hand-edited, not JSON").expect("write");
        let mut favourites = Favourites::open(&path).expect("opens empty");
        assert!(favourites.people().is_empty());
        let aside = path.with_extension("json.unreadable");
        assert_eq!(std::fs::read(&aside).expect("kept aside"), b"{ hand-edited, not JSON");
        favourites.set(person("1", "adele"), true).expect("a fresh file");
        assert_eq!(Favourites::open(&path).expect("reads").people().len(), 1);
    }

    #[test]
    fn a_person_is_dialled_by_the_rule_or_says_why_not() {
        let user = User {
            id: "0b9a8c5e-0000-4000-8000-000000000001".into(),
            display_name: Some("Adele Vance".into()),
            user_principal_name: Some("AdeleV@contoso.example".into()),
            business_phones: vec!["+1 425 555 0109".into()],
            ..User::default()
        };
        let by_uri = DialRule::SipUri { template: "sip:{upn}".into() };
        let adele = Person::from_user(&user, &by_uri);
        assert_eq!(adele.name, "Adele Vance");
        assert_eq!(adele.dial.as_deref(), Some("sip:AdeleV@contoso.example"));
        let by_phone = DialRule::Phone {
            template: "sip:{e164}@sbc.example;user=phone".into(),
            default_country: "US".into(),
        };
        assert_eq!(
            Person::from_user(&user, &by_phone).dial.as_deref(),
            Some("sip:+14255550109@sbc.example;user=phone")
        );
        // Kept as a favourite, then the rule changed: the address follows it.
        let mut kept = adele.clone();
        kept.redial(&DialRule::SipUri { template: "sip:{objectId}@sbc.example".into() });
        assert_eq!(kept.dial, Some(format!("sip:{}@sbc.example", user.id)));
        kept.redial(&by_phone);
        assert_eq!(kept.dial, Some(format!("sip:{}@sbc.example", user.id)), "numbers are not kept");
        let nameless = User { id: "x".into(), ..User::default() };
        let person = Person::from_user(&nameless, &by_phone);
        assert_eq!((person.name.as_str(), person.dial.as_deref()), ("x", None));
        assert!(person.dial_error.is_some_and(|e| e.contains("no phone number")));
    }
}
