//! [`TriggerError`] and the reference's message texts.
//!
//! Every text here is APScheduler 3.11.3's (or Flask-APScheduler's, or CPython's, since those
//! are what a client of the reference saw), except where CONTRACT §2 makes tickd stricter: the
//! date-string family (§2.8) and negative intervals (§2.4).

/// Why a trigger specification was refused. `Display` is the reference's message text
/// (e.g. `Error validating expression '61': the last value (61) is higher than the maximum
/// value (59)`), which the API sends as `error_message` with status 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TriggerError(pub String);

impl TriggerError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        TriggerError(message.into())
    }

    /// `LookupError` from APScheduler's plugin lookup.
    pub(crate) fn unknown_trigger(kind: &str) -> Self {
        TriggerError(format!("No trigger by the name \"{kind}\" was found"))
    }

    /// The `TypeError` Python raises for a keyword the trigger's constructor lacks.
    pub(crate) fn unexpected_argument(class: &str, name: &str) -> Self {
        TriggerError(format!(
            "{class}.__init__() got an unexpected keyword argument '{name}'"
        ))
    }

    /// `ZoneInfoNotFoundError` is a `KeyError`, whose `str()` keeps the quotes; Flask-APScheduler
    /// sends that `str()`.
    pub(crate) fn unknown_zone(name: &str) -> Self {
        TriggerError(format!("'No time zone found with key {name}'"))
    }

    /// CONTRACT §2.8: anything outside the ISO-8601 family is refused, naming what is accepted.
    pub(crate) fn date_format(text: &str) -> Self {
        TriggerError(format!(
            "Invalid date string '{text}': expected YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS[.ffffff]] \
             or with T, optionally followed by Z, ±HH:MM or ±HHMM"
        ))
    }

    /// `convert_to_datetime`'s `TypeError` for a value that is neither a string nor a date.
    pub(crate) fn unsupported_date_type(arg: &str, type_name: &str) -> Self {
        TriggerError(format!("Unsupported type for {arg}: {type_name}"))
    }
}
