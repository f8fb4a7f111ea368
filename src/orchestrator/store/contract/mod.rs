//! The store contract suite: every behaviour the rest of the orchestrator relies on from a
//! [`Store`](super::Store), written once against the trait (and the market engine above it)
//! and run against every backend with [`store_contract`]. A backend's own tests add only what
//! is particular to it (files, migrations, group commit).

// The cases are tests: each panics on the first broken expectation, by design.
#![allow(
    clippy::missing_panics_doc,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::many_single_char_names
)]

pub mod device_keys;
pub mod metering;
pub mod reputation;
pub mod settlement;
pub mod tasks;
pub mod workers;

/// Defines one `#[tokio::test]` per contract case, each on a fresh store from `$make` (an
/// async expression giving `(guard, Arc<dyn Store>)`; the guard lives as long as the test,
/// e.g. a temp dir or a database to drop).
macro_rules! store_contract {
    ($make:expr) => {
        $crate::orchestrator::store::contract::store_contract!(@cases $make;
            insert_get_and_conflict => workers::insert_get_and_conflict,
            update_is_a_compare_and_swap_on_the_token_hash => workers::update_is_a_compare_and_swap_on_the_token_hash,
            workers_are_paged_by_id => workers::workers_are_paged_by_id,
            keys_store_only_hashes_and_roles => workers::keys_store_only_hashes_and_roles,
            keys_carry_quotas_and_are_listed_limited_and_revoked => workers::keys_carry_quotas_and_are_listed_limited_and_revoked,
            a_completed_job_adds_to_its_client_keys_usage_of_the_day => workers::jobs::a_completed_job_adds_to_its_client_keys_usage_of_the_day,
            concurrent_inserts_of_one_id_have_one_winner => workers::concurrent_inserts_of_one_id_have_one_winner,
            ping_answers => workers::ping_answers,
            a_job_is_recorded_once_with_its_receipt_and_counter => workers::jobs::a_job_is_recorded_once_with_its_receipt_and_counter,
            workers_are_found_by_token_and_presence_is_written => workers::jobs::workers_are_found_by_token_and_presence_is_written,
            of_100_concurrent_claimers_exactly_one_wins => tasks::of_100_concurrent_claimers_exactly_one_wins,
            three_lapsed_leases_abandon_the_task => tasks::three_lapsed_leases_abandon_the_task,
            a_late_submit_is_claim_expired_even_before_the_sweeper_runs => tasks::a_late_submit_is_claim_expired_even_before_the_sweeper_runs,
            a_task_keeps_the_hash_of_its_posters_key => tasks::a_task_keeps_the_hash_of_its_posters_key,
            submit_is_idempotent_on_the_output_hash => tasks::submit_is_idempotent_on_the_output_hash,
            echo_work_is_credited_zero_as_simulated => tasks::echo_work_is_credited_zero_as_simulated,
            reject_then_dispute_then_resolve_for_the_worker => tasks::reject_then_dispute_then_resolve_for_the_worker,
            the_dispute_window_closes => tasks::the_dispute_window_closes,
            the_sweeper_applies_the_evaluator_timeout_policy_and_deadlines => tasks::the_sweeper_applies_the_evaluator_timeout_policy_and_deadlines,
            the_listing_orders_filters_and_pages => tasks::the_listing_orders_filters_and_pages,
            one_worker_racing_for_two_tasks_holds_one => tasks::one_worker_racing_for_two_tasks_holds_one,
            a_claim_needs_the_tasks_capabilities => tasks::a_claim_needs_the_tasks_capabilities,
            a_pass_credits_the_worker_with_the_fee_taken_and_seals_a_receipt => tasks::a_pass_credits_the_worker_with_the_fee_taken_and_seals_a_receipt,
            worker_stats_count_what_happened_in_the_window => reputation::worker_stats_count_what_happened_in_the_window,
            confirmed_metrics_and_agent_links => reputation::confirmed_metrics_and_agent_links,
            a_close_batches_each_pending_credit_once_and_is_idempotent => settlement::a_close_batches_each_pending_credit_once_and_is_idempotent,
            racing_closes_and_credits_batch_every_credit_once => settlement::racing_closes_and_credits_batch_every_credit_once,
            a_paying_job_credits_its_worker_and_charges_its_key_once => metering::a_paying_job_credits_its_worker_and_charges_its_key_once,
            a_public_key_is_stored_rotated_and_revoked => device_keys::a_public_key_is_stored_rotated_and_revoked,
            a_nonce_is_accepted_once_per_worker_until_it_expires => device_keys::a_nonce_is_accepted_once_per_worker_until_it_expires,
        );
    };
    (@cases $make:expr; $($name:ident => $($path:ident)::+),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, store) = $make.await;
                $crate::orchestrator::store::contract::$($path)::+(store).await;
            }
        )+
    };
}

pub(crate) use store_contract;
