//! The few words the app shows outside its window (notifications, the tray menu), in the
//! window's language: the window has i18next, these come from Rust.

use agent_runtime::config::UiLanguage;

/// The words, in one language.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Words {
    pub(crate) incoming: &'static str,
    pub(crate) missed: &'static str,
    pub(crate) answer: &'static str,
    pub(crate) decline: &'static str,
    pub(crate) call_back: &'static str,
    pub(crate) show: &'static str,
    pub(crate) hang_up: &'static str,
    pub(crate) mute: &'static str,
    pub(crate) quit: &'static str,
    pub(crate) ringing: &'static str,
    pub(crate) in_call: &'static str,
    pub(crate) muted: &'static str,
    pub(crate) calling: &'static str,
    pub(crate) registered: &'static str,
    pub(crate) registering: &'static str,
    pub(crate) not_registered: &'static str,
    pub(crate) no_account: &'static str,
    pub(crate) starting: &'static str,
}

const ENGLISH: Words = Words {
    incoming: "Incoming call",
    missed: "Missed call",
    answer: "Answer",
    decline: "Decline",
    call_back: "Call back",
    show: "Show Switchboard",
    hang_up: "Hang up",
    mute: "Mute",
    quit: "Quit",
    ringing: "Ringing",
    in_call: "In a call with",
    muted: "muted",
    calling: "Calling",
    registered: "Registered",
    registering: "Registering…",
    not_registered: "Not registered",
    no_account: "No SIP account: direct calls only",
    starting: "Starting…",
};

const RUSSIAN: Words = Words {
    incoming: "Входящий вызов",
    missed: "Пропущенный вызов",
    answer: "Ответить",
    decline: "Отклонить",
    call_back: "Перезвонить",
    show: "Показать Switchboard",
    hang_up: "Завершить",
    mute: "Выключить микрофон",
    quit: "Выйти",
    ringing: "Входящий вызов",
    in_call: "Разговор:",
    muted: "микрофон выключен",
    calling: "Вызов",
    registered: "Зарегистрирован",
    registering: "Регистрация…",
    not_registered: "Не зарегистрирован",
    no_account: "Нет SIP-аккаунта: только прямые вызовы",
    starting: "Запуск…",
};

impl Words {
    /// The words for `ui.language`: with `auto`, the system's locale decides.
    pub(crate) fn for_language(language: UiLanguage) -> Self {
        if russian(language) { RUSSIAN } else { ENGLISH }
    }
}

fn russian(language: UiLanguage) -> bool {
    match language {
        UiLanguage::Ru => true,
        UiLanguage::En => false,
        UiLanguage::Auto => ["LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|l| !l.is_empty()))
            .is_some_and(|l| l.starts_with("ru")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_follow_the_window_s_language() {
        assert_eq!(Words::for_language(UiLanguage::Ru).answer, "Ответить");
        assert_eq!(Words::for_language(UiLanguage::En).missed, "Missed call");
    }
}
