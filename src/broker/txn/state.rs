//! The transaction states of Kafka's coordinator, their wire names and stored codes, and which
//! state may follow which. Plain data, no I/O.

/// Where one transactional id stands (Kafka's TransactionState).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    /// The code stored in `__transaction_state` records.
    pub(crate) fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub(crate) fn from_code(code: i8) -> Option<TxnState> {
        Some(match code {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions report (and filter by).
    pub(crate) fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The state of a DescribeTransactions or ListTransactions name.
    pub(crate) fn from_name(name: &str) -> Option<TxnState> {
        (0..8)
            .filter_map(TxnState::from_code)
            .find(|state| state.name() == name)
    }

    /// States a transactional id may be expired in (no transaction in flight).
    pub(crate) fn is_expiration_allowed(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }

    /// Whether `self` may follow `previous` (Kafka's validPreviousStates).
    pub(crate) fn may_follow(self, previous: TxnState) -> bool {
        use TxnState::{
            CompleteAbort, CompleteCommit, Dead, Empty, Ongoing, PrepareAbort, PrepareCommit,
            PrepareEpochFence,
        };
        let allowed: &[TxnState] = match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            // Transactions v2 may abort without a transaction (the client is unsure).
            PrepareAbort => &[
                Ongoing,
                PrepareEpochFence,
                Empty,
                CompleteCommit,
                CompleteAbort,
            ],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteAbort, CompleteCommit],
            PrepareEpochFence => &[Ongoing],
        };
        allowed.contains(&previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_refused() {
        for code in 0..8 {
            let state = TxnState::from_code(code).expect("known code");
            assert_eq!(state.code(), code);
        }
        assert_eq!(TxnState::from_code(8), None);
        assert_eq!(TxnState::from_code(-1), None);
    }

    #[test]
    fn kafkas_transitions() {
        assert!(TxnState::PrepareCommit.may_follow(TxnState::Ongoing));
        assert!(!TxnState::PrepareCommit.may_follow(TxnState::Empty));
        assert!(TxnState::PrepareAbort.may_follow(TxnState::Empty));
        assert!(!TxnState::CompleteCommit.may_follow(TxnState::PrepareAbort));
        assert!(!TxnState::Ongoing.may_follow(TxnState::PrepareCommit));
        assert!(TxnState::Dead.may_follow(TxnState::CompleteAbort));
        assert!(!TxnState::Dead.may_follow(TxnState::Ongoing));
    }
}
