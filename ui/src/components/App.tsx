import { useCallback, useEffect, useReducer, useRef, useState } from "preact/hooks";
import type { AppStatus, CallRecord, M365Account, Person, PhoneEvent, PresenceOf, SoundDevice, SoundTest, UiSection } from "../bindings";
import { applyReport, sameIds, watchedIds, type Presences } from "../colleagues";
import { CommandFailed, commands, onLink, onPhoneEvent, onPresence, run } from "../ipc";
import { currentLanguage, setLanguage, systemLanguage, t } from "../i18n";
import { isMac, shortcutFor, type Shortcut } from "../shortcuts";
import { dismiss, focusCall, initialState, reduce, transferPending, type CallPhase, type PhoneState } from "../state";
import { ActiveCall } from "./ActiveCall";
import { Colleagues } from "./Colleagues";
import { Dialer } from "./Dialer";
import { FirstRun } from "./FirstRun";
import { History } from "./History";
import { Settings } from "./Settings";
import { withSetting } from "../settings";
import { applyTheme } from "../theme";
import { IncomingCall } from "./IncomingCall";
import { SignIn, type SignInProgress } from "./SignIn";
import { StatusBar } from "./StatusBar";

type Action = { type: "event"; event: PhoneEvent; now: number } | { type: "dismiss"; call: number };

function phoneReducer(state: PhoneState, action: Action): PhoneState {
  switch (action.type) {
    case "event":
      return reduce(state, action.event, action.now);
    case "dismiss":
      return dismiss(state, action.call);
  }
}

export function App() {
  const [phone, dispatch] = useReducer(phoneReducer, initialState);
  const [status, setStatus] = useState<AppStatus | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [setup, setSetup] = useState(false);
  const [now, setNow] = useState(Date.now());
  const [history, setHistory] = useState<CallRecord[]>([]);
  const [showSettings, setShowSettings] = useState(false);
  // undefined: not known yet; "not-configured": Microsoft 365 is not set up here.
  const [m365, setM365] = useState<M365Account | null | undefined | "not-configured">(undefined);
  const [signIn, setSignIn] = useState<SignInProgress | null>(null);
  // A link the app was opened with (sip:, tel:, callto:), for the dialler.
  const [link, setLink] = useState<{ text: string; seq: number } | null>(null);
  const [tab, setTab] = useState<"phone" | "colleagues">("phone");
  const [devices, setDevices] = useState<SoundDevice[] | null>(null);
  const [saving, setSaving] = useState<"saving" | "saved" | null>(null);
  const pendingSaves = useRef(0);
  // Changes made so far: a status asked for before the latest one is not shown.
  const changes = useRef(0);
  const [favourites, setFavourites] = useState<Person[]>([]);
  const [shownPeople, setShownPeople] = useState<Person[]>([]);
  const [presences, setPresences] = useState<Presences>(new Map());
  const [ownPresence, setOwnPresence] = useState<PresenceOf | null>(null);
  const [presenceError, setPresenceError] = useState<string | null>(null);
  const [watchRetries, setWatchRetries] = useState(0);
  const [visible, setVisible] = useState(document.visibilityState !== "hidden");
  // The language in use: changing it re-renders everything.
  const [, setLanguageShown] = useState(currentLanguage());

  // The window's settings, as the status gives them.
  const applyUi = async (ui: UiSection) => {
    applyTheme(ui.theme);
    const language = ui.language === "auto" ? systemLanguage() : ui.language;
    if (language !== currentLanguage()) await setLanguage(language);
    document.documentElement.lang = language;
    setLanguageShown(language);
  };

  const refresh = () => run(commands.status()).then(setStatus, (e) => setError(String(e.message ?? e)));
  // Without a history file the list stays empty; calls still work.
  const refreshHistory = () => run(commands.history(50)).then(setHistory, () => {});

  useEffect(() => {
    let stop: (() => void) | undefined;
    onPhoneEvent((event) => {
      dispatch({ type: "event", event, now: Date.now() });
      if (event.kind === "ended") refreshHistory();
    }).then((unlisten) => (stop = unlisten));
    refresh();
    refreshHistory();
    // Not set up: no sign-in button. Any other failure (no keyring, an unreadable sign-in):
    // signing in again is the way out.
    run(commands.m365Account()).then(setM365, (e) =>
      setM365(e instanceof CommandFailed && e.error.kind === "notConfigured" ? "not-configured" : null),
    );
    // The phone may still be starting: ask again until it is up.
    const poll = setInterval(() => {
      run(commands.status()).then((s) => {
        setStatus(s);
        if (s.phoneReady || s.phoneError) clearInterval(poll);
      }, () => {});
    }, 500);
    const tick = setInterval(() => setNow(Date.now()), 1000);
    let stopPresence: (() => void) | undefined;
    onPresence((report) => {
      setPresences((known) => applyReport(known, report));
      if (report.own) setOwnPresence(report.own);
      setPresenceError(report.error);
    }).then((unlisten) => (stopPresence = unlisten));
    // A link opened now or before the window loaded: the dialler gets it, ready to call.
    const openLink = (text: string) => {
      setLink((last) => ({ text, seq: (last?.seq ?? 0) + 1 }));
      setTab("phone");
      setShowSettings(false);
      setSetup(false);
    };
    let stopLinks: (() => void) | undefined;
    onLink(openLink).then((unlisten) => (stopLinks = unlisten));
    commands.takeLink().then((text) => text && openLink(text));
    const onVisibility = () => setVisible(document.visibilityState !== "hidden");
    document.addEventListener("visibilitychange", onVisibility);
    return () => {
      stop?.();
      stopPresence?.();
      stopLinks?.();
      document.removeEventListener("visibilitychange", onVisibility);
      clearInterval(poll);
      clearInterval(tick);
    };
  }, []);

  const attempt = async (action: () => Promise<unknown>) => {
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(e instanceof CommandFailed ? e.message : String(e));
    }
  };

  // A sign-in to its end: the account, or the error shown. One that was cancelled (by the
  // user, or by switching to a code) says nothing: whoever cancelled it moved on.
  // Counts sign-ins begun and cancelled: a step that comes back after the user moved on is
  // dropped.
  const signInSeq = useRef(0);
  const finishSignIn = (start: (current: () => boolean) => Promise<M365Account | null>) => {
    const seq = ++signInSeq.current;
    const current = () => signInSeq.current === seq;
    return attempt(async () => {
      try {
        const account = await start(current);
        if (!current() || !account) return;
        setM365(account);
        setSignIn(null);
      } catch (e) {
        if (!current() || (e instanceof CommandFailed && e.error.kind === "cancelled")) return;
        setSignIn(null);
        throw e;
      }
    });
  };
  const cancelSignIn = () => {
    signInSeq.current++;
    setSignIn(null);
    commands.cancelSignIn();
  };

  const signedIn = typeof m365 === "object" && m365 !== null;
  // Favourites, once signed in (they are kept on this computer, not in Microsoft 365).
  useEffect(() => {
    if (!signedIn) return;
    run(commands.favourites()).then(setFavourites, (e) => setError(e instanceof CommandFailed ? e.message : String(e)));
  }, [signedIn]);
  // Presence is polled for the colleagues on show (favourites at the background pace while the
  // panel is hidden), and the agent's own comes with it.
  const watched = useRef<{ ids: string[]; visible: boolean } | null>(null);
  const panelVisible = visible && tab === "colleagues";
  useEffect(() => {
    if (!signedIn) {
      watched.current = null;
      setOwnPresence(null);
      return;
    }
    const ids = watchedIds(favourites, tab === "colleagues" ? shownPeople : []);
    const last = watched.current;
    if (last && last.visible === panelVisible && sameIds(last.ids, ids)) return;
    watched.current = { ids, visible: panelVisible };
    let retry: ReturnType<typeof setTimeout> | undefined;
    run(commands.watchPresence(ids, panelVisible)).catch(() => {
      // Graph not reachable yet: ask again in a while.
      watched.current = null;
      retry = setTimeout(() => setWatchRetries((n) => n + 1), 10_000);
    });
    return () => clearTimeout(retry);
  }, [signedIn, favourites, shownPeople, panelVisible, tab, watchRetries]);

  // The sound devices, listed afresh each time the settings open (headsets come and go).
  useEffect(() => {
    if (!showSettings) return;
    setSaving(null);
    setDevices(null);
    run(commands.soundDevices()).then(setDevices, () => setDevices([]));
  }, [showSettings]);

  const soundCheck = {
    levels: (metering: boolean) => run(commands.soundLevels(metering)),
    test: async (sound: SoundTest) => {
      await run(commands.testSound(sound));
    },
  };

  // The panel's callbacks keep their identity across renders, so that the clock's tick does
  // not redraw 650 colleagues (the panel is memoised).
  const searchPeople = useCallback((text: string) => run(commands.searchPeople(text)), []);
  const loadPhoto = useCallback((id: string) => run(commands.photo(id)), []);
  const onFavourite = useCallback(
    (person: Person, favourite: boolean) =>
      attempt(async () => {
        await run(commands.setFavourite(person, favourite));
        setFavourites((list) => (favourite ? [...list.filter((p) => p.id !== person.id), person] : list.filter((p) => p.id !== person.id)));
      }),
    [],
  );
  const focus = focusCall(phone);
  // The call a colleague's button transfers: the one on screen, when it is up and no other
  // transfer of it is under way.
  const transferable = focus && focus.phase === "connected" && !transferPending(focus) ? focus.call : null;
  const transferCall = useRef<number | null>(null);
  transferCall.current = transferable;
  const onCallColleague = useCallback(
    (person: Person) =>
      attempt(async () => {
        if (!person.dial) return;
        const call = transferCall.current;
        if (call !== null) await run(commands.transfer(call, person.dial, person.name));
        else await run(commands.dial(person.dial));
        setTab("phone");
        // The focus goes with the screen: to the call's heading (where Tab reaches its controls).
        setTimeout(() => document.getElementById("call-peer")?.focus(), 0);
      }),
    [],
  );

  // A call taking the screen (ringing, answered, dialled) brings the Phone tab forward.
  useEffect(() => {
    if (focus && focus.phase !== "ended") setTab("phone");
  }, [focus?.call]);
  useEffect(() => {
    // A finished call's summary stays a few seconds, then the dialler is back.
    if (focus?.phase !== "ended") return;
    const call = focus.call;
    const timer = setTimeout(() => dispatch({ type: "dismiss", call }), 4000);
    return () => clearTimeout(timer);
  }, [focus?.call, focus?.phase]);

  // The focused call's controls, for its buttons and the keyboard shortcuts alike.
  const controls = focus && {
    answer: () => attempt(() => run(commands.answer(focus.call))),
    decline: () => attempt(() => run(commands.decline(focus.call))),
    hangup: () => attempt(() => run(commands.hangup(focus.call))),
    mute: (muted: boolean) =>
      attempt(async () => {
        // The phone's `mute` event updates the screen (the tray may mute too).
        await run(commands.setMuted(focus.call, muted));
      }),
    hold: (held: boolean) => attempt(() => run(commands.setHeld(focus.call, held))),
  };
  const shortcut = useRef<{ phase: CallPhase | null; act: (s: Shortcut) => void }>({ phase: null, act: () => {} });
  shortcut.current = {
    phase: focus?.phase ?? null,
    act: (s) => {
      if (!focus || !controls) return;
      if (s === "mute") controls.mute(!focus.muted);
      else if (s === "hold") controls.hold(!focus.heldHere);
      else controls[s]();
    },
  };
  useEffect(() => {
    const mac = isMac();
    const onKey = (event: KeyboardEvent) => {
      const s = shortcutFor(event, shortcut.current.phase, mac);
      if (s) {
        event.preventDefault();
        shortcut.current.act(s);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  useEffect(() => {
    if (status) applyUi(status.ui);
  }, [status?.ui.language, status?.ui.theme]);

  const registration = phone.registration ?? status?.registration ?? null;
  // The account form: set up the first account, or change it (from the settings).
  const editingAccount = status !== null && setup;

  const showTabs = signedIn && !showSettings && focus?.phase !== "ringing-in";
  let main;
  if (showTabs && tab === "colleagues") {
    main = (
      <Colleagues
        favourites={favourites}
        presences={presences}
        presenceError={presenceError}
        search={searchPeople}
        loadPhoto={loadPhoto}
        onShown={setShownPeople}
        onFavourite={onFavourite}
        onCall={onCallColleague}
        transferring={transferable !== null}
      />
    );
  } else if (showSettings && status && !focus) {
    main = (
      <Settings
        ui={status.ui}
        calls={status.calls}
        devices={devices}
        locked={status.locked}
        saving={saving}
        onChange={(key, value) =>
          attempt(async () => {
            // Changes made quickly one after another are saved in turn; the status from the
            // phone is taken once the last is saved, so that an earlier one's does not undo a
            // later one on screen.
            pendingSaves.current++;
            const change = ++changes.current;
            setSaving("saving");
            setStatus((s) => s && withSetting(s, key, value));
            try {
              await run(commands.setSetting(key, value));
              if (pendingSaves.current === 1) setSaving("saved");
            } catch (e) {
              setSaving(null);
              throw e;
            } finally {
              pendingSaves.current--;
              if (pendingSaves.current === 0) {
                const fresh = await run(commands.status()).catch(() => null);
                // A change made while this was asked for has its own status to come.
                if (fresh && change === changes.current) setStatus(fresh);
              }
            }
          })
        }
        onDone={() => setShowSettings(false)}
        account={status.account?.address ?? null}
        shortcuts={status.shortcuts}
        onChangeAccount={() => {
          setShowSettings(false);
          setSetup(true);
        }}
        sound={soundCheck}
        m365={m365}
        onSignOut={() =>
          attempt(async () => {
            await run(commands.signOut());
            setM365(null);
          })
        }
      />
    );
  } else if (focus && controls && focus.phase === "ringing-in") {
    main = <IncomingCall call={focus} onAnswer={controls.answer} onDecline={controls.decline} />;
  } else if (focus && controls) {
    main = (
      <ActiveCall
        call={focus}
        now={now}
        onHangup={controls.hangup}
        onMute={controls.mute}
        onHold={controls.hold}
        onKey={(key) => attempt(() => run(commands.sendDtmf(focus.call, key)))}
        onTransfer={async (target) => {
          // The form stays open when the phone refuses (a number it cannot read, say).
          setError(null);
          try {
            await run(commands.transfer(focus.call, target, null));
          } catch (e) {
            setError(e instanceof CommandFailed ? e.message : String(e));
            throw e;
          }
        }}
        onDismiss={() => dispatch({ type: "dismiss", call: focus.call })}
      />
    );
  } else if (editingAccount) {
    const account = status?.account;
    main = (
      <FirstRun
        locked={status?.locked ?? []}
        current={account ? { registrar: account.registrar, user: account.user, domain: account.domain, password: "" } : null}
        onTest={(form) => run(commands.testAccount(form))}
        onSave={(form) =>
          attempt(async () => {
            await run(commands.saveAccount(form));
            setSetup(false);
            await refresh();
          })
        }
        onCancel={() => setSetup(false)}
      />
    );
  } else {
    main = (
      <Dialer
        hasAccount={status?.account != null}
        demo={status?.demo ?? null}
        onDial={(text) => attempt(() => run(commands.dial(text)))}
        onNormalize={(text) => run(commands.normalizeNumber(text))}
        onDemo={() =>
          attempt(async () => {
            const uri = await run(commands.startDemo());
            await refresh();
            await run(commands.dial(uri));
          })
        }
        onSetup={() => setSetup(true)}
        prefill={link}
      />
    );
  }
  const showHistory = !focus && !editingAccount && !showSettings && !(showTabs && tab === "colleagues");

  return (
    <div class="app">
      <StatusBar
        status={status}
        registration={registration}
        onSettings={() => setShowSettings(true)}
        m365={m365}
        ownPresence={ownPresence}
        signingIn={signIn !== null}
        onSignIn={() => finishSignIn(async () => {
          setSignIn({ mode: "browser" });
          return run(commands.signIn());
        })}
      />
      {error && (
        <div class="error" role="alert" data-testid="error">
          {error}
          <button type="button" class="link" onClick={() => setError(null)} aria-label={t("error.dismiss")}>
            ×
          </button>
        </div>
      )}
      {showTabs && <Tabs tab={tab} onTab={setTab} />}
      <main>
        {signIn && m365 === null && (
          <SignIn
            progress={signIn}
            onUseCode={() => finishSignIn(async (current) => {
              // Starting a code cancels the browser's sign-in.
              const code = await run(commands.startDeviceCode());
              if (!current()) return null;
              setSignIn({ mode: "code", code });
              return run(commands.finishDeviceCode());
            })}
            onCancel={cancelSignIn}
          />
        )}
        <div id="main-panel" role={showTabs ? "tabpanel" : undefined} aria-labelledby={showTabs ? `tab-${tab}` : undefined}>
          {main}
          {showHistory && <History records={history} now={now} onCallBack={(peer) => attempt(() => run(commands.dial(peer)))} />}
        </div>
      </main>
    </div>
  );
}

const TABS = ["phone", "colleagues"] as const;

/// Phone and Colleagues, as tabs (arrow keys move between them).
function Tabs({ tab, onTab }: { tab: (typeof TABS)[number]; onTab: (tab: (typeof TABS)[number]) => void }) {
  const onKey = (event: KeyboardEvent) => {
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    event.preventDefault();
    const next = TABS[(TABS.indexOf(tab) + 1) % TABS.length];
    onTab(next);
    document.getElementById(`tab-${next}`)?.focus();
  };
  return (
    // The tab list inside a navigation landmark (a `nav` given the tablist role is none).
    <nav aria-label={t("tabs.label")}>
      <div class="tabs" role="tablist" aria-label={t("tabs.label")} onKeyDown={onKey}>
        {TABS.map((name) => (
          <button
            key={name}
            type="button"
            role="tab"
            id={`tab-${name}`}
            data-testid={`tab-${name}`}
            aria-selected={tab === name}
            aria-controls="main-panel"
            tabIndex={tab === name ? 0 : -1}
            onClick={() => onTab(name)}
          >
            {t(`tabs.${name}`)}
          </button>
        ))}
      </div>
    </nav>
  );
}
