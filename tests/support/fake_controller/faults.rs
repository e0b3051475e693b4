//! Timing faults: a controller that answers late, answers 504 after acting, or acts after
//! answering 504, and slow template lookups. These are the conditions of a real overload.

use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub enum LaunchFault {
    /// Hold the launch for this long, then create the job and answer (the client may be gone).
    AnswerLate(Duration),
    /// Create the job, then answer 504 (a gateway gave up after the controller acted).
    ActThen504,
    /// Answer 504 at once and create the job this long afterwards (queued behind a gateway).
    Answer504ThenAct(Duration),
    /// Answer 504 and never act (the request died in the gateway).
    Drop504,
}

#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Applied to the next `n` launch POSTs, one each.
    pub launch: Option<(LaunchFault, usize)>,
    /// Added before every answer to a template list (the lookup of a template by name).
    pub lookup_delay: Duration,
}

impl Faults {
    /// The fault for this launch POST, if one is armed.
    pub fn take_launch(&mut self) -> Option<LaunchFault> {
        let (fault, left) = self.launch.as_mut()?;
        let fault = *fault;
        *left -= 1;
        if *left == 0 {
            self.launch = None;
        }
        Some(fault)
    }
}
