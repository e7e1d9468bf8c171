//! The ledger's commits on PostgreSQL (a throwaway cluster, `consentry_test_support::pg`): the scenarios of
//! `ledger`, at the same fail points, in `PgStore`'s append, fact and checkpoint transactions.

use crate::fault;
use crate::ledger::{self, Backend};

fn append(point: &str, action: &str) {
    ledger::append(Backend::Postgres, point, action);
}

fn import(point: &str, action: &str) {
    ledger::import(Backend::Postgres, point, action);
}

fn checkpoint(point: &str, action: &str) {
    ledger::checkpoint(Backend::Postgres, point, action);
}

fault!(append_before_commit, "ledger::append::before_commit", append, ["io", "crash"]);
fault!(append_after_commit, "ledger::append::after_commit", append, ["crash"]);
fault!(facts_before_commit, "ledger::facts::before_commit", import, ["io", "crash"]);
fault!(facts_after_commit, "ledger::facts::after_commit", import, ["crash"]);
fault!(checkpoint_before_commit, "ledger::checkpoint::before_commit", checkpoint, ["io", "crash"]);
fault!(checkpoint_after_commit, "ledger::checkpoint::after_commit", checkpoint, ["crash"]);
