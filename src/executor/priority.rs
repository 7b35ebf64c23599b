//! Scripts run a few nice levels below the daemon (`[executor] nice`, default 5).
//!
//! Starting a script blocks a thread until the child has called `exec`, and that thread and
//! the child need a core to get there. When ten runs are due in the same second, the scripts
//! started first already hold both cores (a Python interpreter spends tens of milliseconds
//! starting), and at the same priority the daemon's threads wait for the scheduler's next
//! tick behind them. Measured with `bench/run --only firing` (ten runs due per second, two
//! cores), scheduled → spawned went from p50 12.4 / p99 48.9 ms to 6.5 / 24.5 ms with
//! scripts 5 levels below the daemon. A lowered script still gets every idle cycle; it only
//! yields the core to the daemon's short spawn, claim and record work.
//!
//! The run's supervisor inherits the daemon's priority and lowers its whole process group
//! only once it has started the interpreter (`supervisor.rs`): lowered earlier, its own
//! start and the interpreter's `exec` would wait behind the scripts they should overtake.
//! A sandbox that forbids `setpriority` leaves scripts at the daemon's priority.

use rustix::process::getpriority_process;

/// The absolute nice value scripts get, `levels` below the daemon's own; `None` when they
/// keep the daemon's (`levels` is 0, or the daemon is already at the lowest priority).
pub(super) fn script_priority(levels: i32) -> Option<i32> {
    if levels <= 0 {
        return None;
    }
    let own = match getpriority_process(None) {
        Ok(own) => own,
        Err(err) => {
            tracing::warn!("cannot read the daemon's priority, scripts keep it: {err}");
            return None;
        }
    };
    let lowered = own.saturating_add(levels).min(19);
    (lowered > own).then_some(lowered)
}
