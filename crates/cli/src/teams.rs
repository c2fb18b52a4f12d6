//! `presence`, `search` and `set-presence`: Teams colleagues through Microsoft Graph, as the
//! signed-in user (docs/graph.md).
//!
//! Events: `presence` (user, id, availability, activity; with `--watch`, again whenever it
//! changes), `person` (a search result with its dialable address, or why there is none, and
//! whether the full profile was readable), `presence-set`, `presence-cleared`, and
//! `graph-failed` with a `reason` (`forbidden` names the missing permission, `throttled`,
//! `not-found`, `unauthorized`, `unreachable`, `failed`). Sign-in problems end as `signin`
//! and `whoami` do (exit 3 or 4).

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use agent_runtime::AgentError;
use agent_runtime::colleagues::{Colleagues, ColleaguesError, Profile};
use agent_runtime::m365::{M365, Session};
use agent_runtime::photos::PhotoCache;
use graph_client::Token;
use graph_client::graph::{Graph, GraphError};
use graph_client::presence::Poller;
use serde::Serialize;

use crate::emit;
use crate::signin::{failed, m365};

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
enum Line<'a> {
    Presence {
        user: &'a str,
        id: &'a str,
        availability: &'a str,
        activity: &'a str,
    },
    Person {
        id: &'a str,
        name: Option<&'a str>,
        username: Option<&'a str>,
        mail: Option<&'a str>,
        job_title: Option<&'a str>,
        department: Option<&'a str>,
        /// `full` with User.Read.All, else `basic`.
        profile: &'static str,
        dial: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        dial_error: Option<String>,
        /// The cached photo's path (with `--photos`; null when they have none).
        photo: Option<String>,
    },
    PresenceSet {
        availability: &'a str,
        activity: &'a str,
        minutes: u64,
    },
    PresenceCleared,
    GraphFailed {
        reason: &'static str,
        message: String,
    },
}

/// A signed-in session, Graph, and a fresh access token; or the exit code of the failure.
async fn connect() -> Result<Result<(M365, Session, Graph, Token), ExitCode>, AgentError> {
    let m365 = match m365()? {
        Ok(m365) => m365,
        Err(error) => return Ok(Err(failed(error))),
    };
    let mut session = match m365.resume().await {
        Ok(session) => session,
        Err(error) => return Ok(Err(failed(error))),
    };
    let graph = match m365.identity().graph().await {
        Ok(graph) => graph,
        Err(error) => return Ok(Err(failed(error.into()))),
    };
    let token = match m365.access_token(&mut session).await {
        Ok(token) => token,
        Err(error) => return Ok(Err(failed(error))),
    };
    Ok(Ok((m365, session, graph, token)))
}

fn graph_failed(error: &GraphError) -> ExitCode {
    let reason = match error {
        GraphError::Unauthorized { .. } => "unauthorized",
        GraphError::Forbidden { .. } => "forbidden",
        GraphError::Throttled { .. } | GraphError::Unavailable { .. } => "throttled",
        GraphError::NotFound { .. } => "not-found",
        GraphError::Unreachable { .. } => "unreachable",
        _ => "failed",
    };
    emit(&Line::GraphFailed { reason, message: error.to_string() });
    ExitCode::FAILURE
}

/// `presence [USER…]`: each user's presence (UPN or object id), or with none the signed-in
/// user's own; with `watch`, polls within the tenant's budget (at the visible or the background
/// pace) and reports changes until the time is up.
pub(crate) async fn presence(
    users: &[String],
    watch: Option<f64>,
    visible: bool,
) -> Result<ExitCode, AgentError> {
    if watch.is_some_and(|secs| !(0.0..=86_400.0).contains(&secs)) {
        return Err(AgentError::Usage("--watch takes 0 to 86400 seconds".into()));
    }
    let (m365, mut session, graph, mut token) = match connect().await? {
        Ok(connected) => connected,
        Err(code) => return Ok(code),
    };
    if users.is_empty() {
        return Ok(match graph.my_presence(&token).await {
            Ok(p) => {
                emit(&Line::Presence {
                    user: &session.account.username,
                    id: &p.id,
                    availability: &p.availability,
                    activity: &p.activity,
                });
                ExitCode::SUCCESS
            }
            Err(error) => graph_failed(&error),
        });
    }
    // getPresencesByUserId takes object ids: look up what was given as a UPN.
    let mut ids = Vec::new();
    let mut names = HashMap::new();
    for user in users {
        let id = if looks_like_object_id(user) {
            user.clone()
        } else {
            match graph.user(&token, user, false).await {
                Ok(found) => found.id,
                Err(error) => return Ok(graph_failed(&error)),
            }
        };
        names.insert(id.clone(), user.clone());
        ids.push(id);
    }
    let settings = crate::load_config()?.presence_polling();
    let started = tokio::time::Instant::now();
    let deadline = watch.map(|s| started + Duration::from_secs_f64(s));
    let mut poller = Poller::new(settings, ids.len(), visible, u64::from(std::process::id()));
    let mut last: HashMap<String, (String, String)> = HashMap::new();
    loop {
        let answer = graph.presences_of_all(&token, &ids).await;
        // What the answered requests carried is shown even when a later one failed.
        for p in &answer.presences {
            let state = (p.availability.clone(), p.activity.clone());
            if last.get(&p.id) != Some(&state) {
                let user = names.get(&p.id).map_or(p.id.as_str(), String::as_str);
                emit(&Line::Presence {
                    user,
                    id: &p.id,
                    availability: &p.availability,
                    activity: &p.activity,
                });
                last.insert(p.id.clone(), state);
            }
        }
        let now = started.elapsed();
        match answer.error {
            None => poller.on_success(now, ids.len()),
            Some(
                GraphError::Throttled { retry_after } | GraphError::Unavailable { retry_after, .. },
            ) if deadline.is_some() => {
                tracing::warn!(?retry_after, "presence polling throttled; backing off");
                poller.on_throttled(now, retry_after, ids.len());
            }
            // While watching, a network failure or a server fault is waited out.
            Some(error @ (GraphError::Unreachable { .. } | GraphError::Failed { .. }))
                if deadline.is_some() =>
            {
                tracing::warn!(%error, "presence poll failed; backing off");
                poller.on_failure(now, ids.len());
            }
            // An access token revoked or expired early: renew it once, then poll again.
            Some(GraphError::Unauthorized { .. }) if deadline.is_some() => {
                tracing::info!("Graph refused the access token; renewing it");
                // The session holds the new token; the next poll takes it.
                if let Err(error) = m365.renewed_token(&mut session).await {
                    return Ok(failed(error));
                }
                poller.on_failure(now, ids.len());
            }
            Some(error) => return Ok(graph_failed(&error)),
        }
        let Some(deadline) = deadline else { return Ok(ExitCode::SUCCESS) };
        let next = started + poller.next_poll();
        if next >= deadline {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep_until(next).await;
        token = match m365.access_token(&mut session).await {
            Ok(token) => token,
            Err(error) => return Ok(failed(error)),
        };
    }
}

fn looks_like_object_id(text: &str) -> bool {
    text.len() == 36 && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// `search TEXT`: people whose name or address starts with it, each with a dialable address,
/// up to `top` of them in pages of `page_size` (following `@odata.nextLink`). The full profile
/// (job title, department, phones) needs User.Read.All; without that grant the search asks for
/// the basic profile. With `photos`, each person's photo goes through the disk cache.
pub(crate) async fn search(
    text: &str,
    top: u32,
    page_size: u32,
    photos: bool,
) -> Result<ExitCode, AgentError> {
    if text.trim().is_empty() {
        return Err(AgentError::Usage("search needs some text to look for".into()));
    }
    if !(1..=999).contains(&page_size) {
        return Err(AgentError::Usage("--page-size takes 1 to 999".into()));
    }
    if top == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    let cache = if photos {
        let cache = PhotoCache::system()
            .ok_or_else(|| AgentError::Usage("no cache directory for photos".into()))?;
        // Colleagues not seen for a month make room.
        if let Err(error) = cache.prune(Duration::from_secs(30 * 24 * 3600), SystemTime::now()) {
            tracing::warn!(%error, "could not prune the photo cache");
        }
        Some(cache)
    } else {
        None
    };
    let m365 = match m365()? {
        Ok(m365) => m365,
        Err(error) => return Ok(failed(error)),
    };
    let rule = crate::load_config()?.dial_rule();
    let colleagues = match Colleagues::connect(m365, rule, cache).await {
        Ok(colleagues) => colleagues,
        Err(error) => return Ok(colleagues_failed(error)),
    };
    let (people, profile) = match colleagues.search(text, top, page_size).await {
        Ok(found) => found,
        Err(error) => return Ok(colleagues_failed(error)),
    };
    let profile = match profile {
        Profile::Full => "full",
        Profile::Basic => "basic",
    };
    for person in &people {
        let photo = if photos { colleagues.photo(&person.id).await } else { None };
        emit(&Line::Person {
            id: &person.id,
            name: Some(&person.name),
            username: person.username.as_deref(),
            mail: person.mail.as_deref(),
            job_title: person.job_title.as_deref(),
            department: person.department.as_deref(),
            profile,
            dial: person.dial.as_deref(),
            dial_error: person.dial_error.clone(),
            photo: photo.map(|p| p.display().to_string()),
        });
    }
    Ok(ExitCode::SUCCESS)
}

fn colleagues_failed(error: ColleaguesError) -> ExitCode {
    match error {
        ColleaguesError::SignIn(error) => failed(error),
        ColleaguesError::Graph(error) => graph_failed(&error),
    }
}

/// `set-presence available|busy|in-a-call|in-a-conference-call|away|clear`: this app's presence session for the
/// signed-in user (session id: the app's client id).
pub(crate) async fn set_presence(state: &str, minutes: u64) -> Result<ExitCode, AgentError> {
    // setPresence accepts only the pairs its documentation lists: "busy" is Busy / In a call.
    let (availability, activity) = match state {
        "available" => ("Available", "Available"),
        "busy" | "in-a-call" => ("Busy", "InACall"),
        "away" => ("Away", "Away"),
        "in-a-conference-call" => ("Busy", "InAConferenceCall"),
        "clear" => ("", ""),
        other => {
            return Err(AgentError::Usage(format!(
                "'{other}' is not one of available, busy, in-a-call, in-a-conference-call, away, clear"
            )));
        }
    };
    let (m365, session, graph, token) = match connect().await? {
        Ok(connected) => connected,
        Err(code) => return Ok(code),
    };
    let client_id = m365.identity().settings().client_id.clone();
    let user = &session.account.object_id;
    let result = if state == "clear" {
        graph.clear_presence(&token, user, &client_id).await.map(|()| emit(&Line::PresenceCleared))
    } else {
        let minutes = minutes.clamp(5, 240);
        graph
            .set_presence(
                &token,
                user,
                &client_id,
                availability,
                activity,
                Duration::from_secs(minutes * 60),
            )
            .await
            .map(|()| emit(&Line::PresenceSet { availability, activity, minutes }))
    };
    Ok(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => graph_failed(&error),
    })
}

/// Shows the agent in Teams while `listen` runs: Available, and Busy/In a call while a call is
/// connected (`agent_runtime::presence_writer`, as in the desktop app).
#[derive(Debug)]
pub(crate) struct PresenceWriter {
    activity: tokio::sync::watch::Sender<Activity>,
    writer: agent_runtime::presence_writer::PresenceWriter,
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
enum WriterLine<'a> {
    TeamsPresence { availability: &'a str, activity: &'a str },
    TeamsPresenceFailed { message: String },
}

impl PresenceWriter {
    /// Starts writing Available; `None` (after saying why) when there is no usable sign-in:
    /// calls work without Teams presence.
    pub(crate) async fn start() -> Result<Option<Self>, AgentError> {
        let m365 = match m365()? {
            Ok(m365) => m365,
            Err(error) => {
                failed(error);
                return Ok(None);
            }
        };
        let rule = crate::load_config()?.dial_rule();
        let colleagues = match Colleagues::connect(m365, rule, None).await {
            Ok(colleagues) => std::sync::Arc::new(colleagues),
            Err(error) => {
                colleagues_failed(error);
                return Ok(None);
            }
        };
        let (activity, watch) = tokio::sync::watch::channel(Activity::Available);
        let seed = u64::from(std::process::id());
        let writer = agent_runtime::presence_writer::PresenceWriter::start(
            colleagues,
            watch,
            seed,
            |report| match report {
                WriterReport::Written { availability, activity } => {
                    emit(&WriterLine::TeamsPresence { availability, activity });
                }
                WriterReport::Failed { message } => {
                    emit(&WriterLine::TeamsPresenceFailed { message });
                }
                WriterReport::Cleared => emit(&Line::PresenceCleared),
            },
        );
        Ok(Some(Self { activity, writer }))
    }

    pub(crate) fn set(&self, activity: Activity) {
        self.activity.send_replace(activity);
    }

    /// Clears the session (at most 5 s, then gives up) and stops.
    pub(crate) async fn stop(self) {
        self.writer.stop().await;
    }
}

use agent_runtime::presence_writer::WriterReport;
use graph_client::presence::Activity;
