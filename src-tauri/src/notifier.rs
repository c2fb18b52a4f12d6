//! Desktop notifications for calls: a ringing call with Answer and Decline (urgent, there until
//! it stops ringing), and a missed call with Call back. What to say comes from
//! `agent_runtime::notices`; this puts it on the desktop.
//!
//! Linux: `org.freedesktop.Notifications` on the session bus (Desktop Notifications
//! Specification 1.2): `Notify` with actions when the server has the `actions` capability,
//! `CloseNotification`, and its `ActionInvoked` signal. Elsewhere, and without a notification
//! server, the window is all there is (logged once).

use agent_runtime::phone::PhoneEvent;
use tauri::{AppHandle, Runtime};
use tokio::sync::mpsc;

/// The notifier's task, fed with the phone's events.
#[derive(Debug, Clone)]
pub(crate) struct Notifier {
    events: mpsc::UnboundedSender<PhoneEvent>,
}

impl Notifier {
    /// Starts the notifier's task (it connects to the session bus).
    pub(crate) fn start<R: Runtime>(app: AppHandle<R>) -> Self {
        let (events, inbox) = mpsc::unbounded_channel();
        tauri::async_runtime::spawn(imp::run(app, inbox));
        Self { events }
    }

    /// Takes in one phone event (from the thread that hands them to the window).
    pub(crate) fn observe(&self, event: &PhoneEvent) {
        let _ = self.events.send(event.clone());
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::collections::HashMap;

    use agent_runtime::notices::{Notice, NoticeAction, NoticeChange, NoticeKind, Notices};
    use agent_runtime::phone::{CallNumber, PhoneEvent};
    use futures_util::StreamExt as _;
    use tauri::{AppHandle, Manager, Runtime};
    use tokio::sync::mpsc;
    use zbus::zvariant::Value;

    use crate::commands::AppState;
    use crate::words::Words;

    #[zbus::proxy(
        interface = "org.freedesktop.Notifications",
        default_service = "org.freedesktop.Notifications",
        default_path = "/org/freedesktop/Notifications"
    )]
    trait Notifications {
        #[allow(clippy::too_many_arguments)]
        fn notify(
            &self,
            app_name: &str,
            replaces_id: u32,
            app_icon: &str,
            summary: &str,
            body: &str,
            actions: &[&str],
            hints: HashMap<&str, Value<'_>>,
            expire_timeout: i32,
        ) -> zbus::Result<u32>;

        fn close_notification(&self, id: u32) -> zbus::Result<()>;

        fn get_capabilities(&self) -> zbus::Result<Vec<String>>;

        #[zbus(signal)]
        fn action_invoked(&self, id: u32, action_key: String) -> zbus::Result<()>;
    }

    /// A notice on the desktop: its call, which one, and whom Call back dials.
    struct Shown {
        call: CallNumber,
        kind: NoticeKind,
        address: String,
    }

    pub(super) async fn run<R: Runtime>(
        app: AppHandle<R>,
        mut events: mpsc::UnboundedReceiver<PhoneEvent>,
    ) {
        let proxy = match connect().await {
            Ok(proxy) => proxy,
            Err(error) => {
                tracing::info!(%error, "no desktop notifications (no notification server)");
                // The events still come: let them go.
                while events.recv().await.is_some() {}
                return;
            }
        };
        let actions =
            proxy.get_capabilities().await.is_ok_and(|c| c.iter().any(|c| c == "actions"));
        let mut invoked = match proxy.receive_action_invoked().await {
            Ok(stream) => Some(stream),
            Err(error) => {
                tracing::warn!(%error, "notification actions will not be heard");
                None
            }
        };
        let mut notices = Notices::default();
        // Call → the id of its ringing notice; notice id → what it is about.
        let mut ringing: HashMap<CallNumber, u32> = HashMap::new();
        let mut shown: HashMap<u32, Shown> = HashMap::new();
        loop {
            let signal = async {
                match invoked.as_mut() {
                    Some(stream) => stream.next().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else { break };
                    for change in notices.observe(&event) {
                        match change {
                            NoticeChange::Show(notice) => {
                                let words = words(&app);
                                match show(&proxy, &notice, words, actions).await {
                                    Ok(id) => {
                                        if notice.kind == NoticeKind::Incoming {
                                            ringing.insert(notice.call, id);
                                        }
                                        let Notice { call, kind, address, .. } = notice;
                                        shown.insert(id, Shown { call, kind, address });
                                    }
                                    Err(error) => tracing::warn!(%error, "notification not shown"),
                                }
                            }
                            NoticeChange::Close(call) => {
                                if let Some(id) = ringing.remove(&call) {
                                    shown.remove(&id);
                                    if let Err(error) = proxy.close_notification(id).await {
                                        tracing::debug!(%error, "notification already gone");
                                    }
                                }
                            }
                        }
                    }
                }
                Some(signal) = signal => {
                    let Ok(args) = signal.args() else { continue };
                    let Some(notice) = shown.get(&args.id) else { continue };
                    let Some(action) = NoticeAction::from_key(&args.action_key) else { continue };
                    act(&app, &notices, notice, action).await;
                }
            }
        }
    }

    async fn connect() -> zbus::Result<NotificationsProxy<'static>> {
        let connection = zbus::Connection::session().await?;
        let proxy = NotificationsProxy::new(&connection).await?;
        // There must be a server: its capabilities say so.
        proxy.get_capabilities().await?;
        Ok(proxy)
    }

    fn words<R: Runtime>(app: &AppHandle<R>) -> Words {
        app.state::<AppState>().words()
    }

    async fn show(
        proxy: &NotificationsProxy<'static>,
        notice: &Notice,
        words: Words,
        with_actions: bool,
    ) -> zbus::Result<u32> {
        let (summary, actions, urgency, timeout): (&str, Vec<&str>, u8, i32) = match notice.kind {
            // Critical: it stays until the call stops ringing and we close it.
            NoticeKind::Incoming => (
                words.incoming,
                vec!["default", "", "answer", words.answer, "decline", words.decline],
                2,
                0,
            ),
            NoticeKind::Missed => {
                (words.missed, vec!["default", "", "call-back", words.call_back], 1, -1)
            }
        };
        let actions = if with_actions { actions } else { Vec::new() };
        let mut hints = HashMap::new();
        hints.insert("urgency", Value::from(urgency));
        hints.insert("desktop-entry", Value::from("Switchboard"));
        // The body is markup to some servers: the caller's name must not be taken for it.
        let body = escape(&if notice.who == notice.address {
            notice.who.clone()
        } else {
            format!("{}\n{}", notice.who, notice.address)
        });
        proxy
            .notify("Switchboard", 0, "switchboard", summary, &body, &actions, hints, timeout)
            .await
    }

    /// `&`, `<` and `>` escaped (the body may be read as markup).
    fn escape(text: &str) -> String {
        text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
    }

    async fn act<R: Runtime>(
        app: &AppHandle<R>,
        notices: &Notices,
        notice: &Shown,
        action: NoticeAction,
    ) {
        let state = app.state::<AppState>();
        let phone = state.phone().ok();
        let result = match (action, notice.kind, phone) {
            (NoticeAction::Answer, NoticeKind::Incoming, Some(phone))
                if notices.is_ringing(notice.call) =>
            {
                phone.answer(notice.call).await.map_err(|e| e.to_string())
            }
            (NoticeAction::Decline, NoticeKind::Incoming, Some(phone))
                if notices.is_ringing(notice.call) =>
            {
                phone.decline(notice.call).await.map_err(|e| e.to_string())
            }
            (NoticeAction::CallBack, NoticeKind::Missed, Some(phone)) => {
                phone.dial(&notice.address).await.map(|_| ()).map_err(|e| e.to_string())
            }
            _ => Ok(()),
        };
        if let Err(error) = result {
            tracing::warn!(%error, ?action, "the notification's action failed");
        }
        // Anything but Decline brings the window forward (the call is on it).
        if action != NoticeAction::Decline {
            crate::quick::show(app);
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use agent_runtime::phone::PhoneEvent;
    use tauri::{AppHandle, Runtime};
    use tokio::sync::mpsc;

    pub(super) async fn run<R: Runtime>(
        _app: AppHandle<R>,
        mut events: mpsc::UnboundedReceiver<PhoneEvent>,
    ) {
        tracing::info!("desktop notifications are not built for this system yet");
        while events.recv().await.is_some() {}
    }
}
