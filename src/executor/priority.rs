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
//! The child inherits the daemon's priority and is lowered only once `spawn` has returned:
//! lowered before `exec`, the spawn itself would wait behind the scripts it should overtake.
//! The whole process group is lowered, in case the script forked in the meantime.

use std::sync::atomic::{AtomicBool, Ordering};

use rustix::process::{Pid, getpriority_process, setpriority_pgrp};

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

/// Sets the process group led by `pid` to `priority`. A group already gone (a script that
/// ended at once) is no error; anything else (a sandbox that forbids `setpriority`) is
/// logged once, as a warning, and the scripts run on at the daemon's priority.
pub(super) fn lower(pid: u32, priority: i32) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    // pid 0 would name the daemon's own group; `from_raw` refuses it.
    let Some(group) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    match setpriority_pgrp(Some(group), priority) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(err) => {
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "cannot lower scripts' priority ([executor] nice), they keep the daemon's: {err}"
                );
            }
        }
    }
}
