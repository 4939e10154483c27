//! The scenario list, expanded into one test per scenario by
//! [`conformance_tests!`](crate::conformance_tests).

/// Expands to one `#[tokio::test]` per conformance scenario, each calling
/// `$factory()` (an async closure or function returning a
/// [`TestBackend`](crate::conformance::TestBackend)) for a fresh backend.
///
/// Use it once per backend module of a test file; the scenario list lives
/// here only.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr $(,)?) => {
        $crate::__conformance_expand! {
            factory: ($factory),
            single: [
                // Namespaces
                namespace_trivial,
                namespaces,
                ping,
                spec_create_destroy,
                spec_errors,
                two_work_specs_basic,
                namespace_get_or_create,
                namespace_destroy_twice,
                namespace_empty_name,
                namespace_destroy_contents,
                namespace_isolation,
                odd_object_names,
                // Work specs
                change_spec_data,
                data_empty_list,
                default_meta,
                prefilled_meta,
                set_data_sets_meta,
                nice_weight,
                set_meta,
                meta_continuous,
                meta_counts,
                spec_deleted_gone,
                spec_in_namespace_gone,
                one_day_interval,
                set_data_resets_meta,
                definition_float_truncation,
                null_keys_are_absent,
                set_work_spec_upsert,
                meta_counts_exclude_delayed,
                data_round_trip,
                // Work units
                trivial_work_unit_flow,
                work_unit_queries,
                delete_work_units,
                count_work_unit_status,
                work_unit_order,
                work_unit_priority_ctor,
                work_unit_priority_set,
                work_unit_data,
                add_work_unit_bleedover,
                recreate_work_units,
                continuous,
                continuous_interval,
                continuous_unit_name,
                continuous_one_per_request,
                continuous_next_gate,
                continuous_sub_second,
                continuous_paused_and_reused,
                continuous_gate_spares_real_units,
                continuous_running_yields_to_lower_priority,
                continuous_beside_delayed_units,
                continuous_gated_yields_to_lower_priority,
                continuous_reuses_a_delayed_unit,
                continuous_not_generated_after_retries_fail,
                max_running,
                max_running_headroom,
                detached_attempts_count_for_nothing,
                max_running_below_running,
                negative_limits_are_unlimited,
                make_attempt_ignores_limits,
                request_size_bound,
                request_specific_spec,
                by_runtime,
                not_before_delayed_status,
                not_before_attempt,
                not_before_priority,
                delayed_output,
                unit_deleted_gone,
                unit_spec_deleted_gone,
                summarize,
                summarize_levels,
                summaries_drop_emptied_statuses,
                counts_as_of_expiry,
                add_work_unit_upsert,
                work_unit_meta_ops,
                work_unit_snapshot,
                attempt_snapshot,
                query_limits_apply_to_mutators,
                limit_after_filters,
                active_attempt_outranks_not_before,
                query_paging,
                query_edges,
                clock_skew,
                epoch_is_not_unset,
                odd_unit_names,
                request_attempts_parameters,
                batch_in_hand_out_order,
                batch_from_one_spec,
                scheduler_fair_share,
                scheduler_weights,
                scheduler_pending_shifts_the_split,
                scheduler_totals_over_top_candidates,
                scheduler_weight_total_over_candidates,
                scheduler_exclusions,
                unworkable_priority_yields,
                both_request_caps,
                available_memory_filters_specs,
                available_memory_follows_set_meta,
                available_memory_default_is_none,
                available_memory_gates_continuous,
                // Bulk add
                bulk_add_upsert,
                bulk_add_duplicates,
                bulk_add_all_or_nothing,
                bulk_add_empty,
                bulk_add_large,
                bulk_add_counts,
                // Attempts
                attempt_lifetime,
                attempt_metadata,
                work_unit_chaining,
                chaining_mixed,
                chaining_two_step,
                chaining_expiry,
                chaining_duplicate,
                chaining_missing_next_spec,
                chaining_ignored_outputs,
                chaining_pending_target,
                chaining_replaces_meta,
                chaining_from_the_data_given,
                chaining_into_its_own_spec,
                chaining_item_rules,
                chaining_after_fail,
                chaining_superseded,
                chaining_after_readd,
                attempt_expiration,
                retry_delay,
                not_before_moved_into_the_past,
                attempt_fractional_start,
                attempt_gone,
                max_retries,
                max_retries_multi,
                max_retries_multi_batch,
                max_retries_unlimited,
                max_retries_set_meta,
                lazy_expiry_finish_before_check,
                lazy_expiry_after_check,
                lazy_expiry_in_query_mutators,
                failed_priority_change_expires_nothing,
                lapsed_lease_not_before_ahead_is_delayed,
                expiry_check_scope,
                expiry_boundary,
                make_attempt_semantics,
                empty_map_replaces_data,
                // Workers
                worker_ancestry,
                worker_adoption,
                worker_metadata,
                parent_changes_keep_worker_state,
                worker_attempts,
                deactivate_child,
                worker_defaults,
                worker_parent_edge_cases,
                attempts_across_namespaces,
                namespace_destroy_takes_workers_attempts_elsewhere,
                deleted_attempts_leave_worker_lists,
                child_attempts_scope,
                worker_family_follows_moves_and_destroys,
                worker_list_order,
                // Concurrency
                concurrent_execution,
                add_same_unit,
                concurrent_requests_disjoint,
                concurrent_get_or_create,
                concurrent_chaining_same_output,
                // The error catalogue
                no_work_spec_name,
                bad_work_spec_name,
                invalid_work_spec_data,
                changed_name,
                lost_lease,
                no_such_work_spec,
                no_such_work_unit,
                transitions_pending_active,
                transitions_pending_not_active,
                transitions_pending_cleared,
                transitions_expired,
                transitions_finished,
                transitions_failed,
                transitions_retryable,
                dead_namespace_handle,
                dead_spec_handle,
                dead_unit_handle,
                dead_attempt_handle,
                recreated_namespace_handle,
                recreated_spec_handle,
                recreated_unit_handle,
                handles_given_out_act_on_their_objects,
                // Bad input (no panics, nothing lost)
                zero_and_negative_lifetimes,
                zero_and_negative_renew,
                zero_and_negative_retry_delay,
                huge_make_attempt_lifetime,
                huge_renew_extend,
                huge_retry_delay,
                huge_definition_values,
                huge_work_unit_times,
                extreme_spec_meta_integers,
                extreme_definition_integers,
                // Limits (the crate's `# Limits`)
                name_limits,
                chained_name_limits,
                data_depth_limits,
                data_size_limits,
                mode_limits,
                interval_limits,
                long_interval_near_the_end,
                priority_limits,
                time_limits,
                gone_before_time_range,
                chained_time_limits,
                clock_set_back,
                // Where rules meet
                upsert_judges_a_lapsed_lease_unexpired,
                lapsed_lease_ends_as_pending,
                make_attempt_leaves_a_lapsed_lease_pending,
                not_before_paths_agree,
                concurrent_requests_respect_max_running,
                concurrent_requests_generate_one_continuous_unit,
                chaining_reads_then_at_finish,
                retry_limit_outlives_a_readd,
                chaining_keeps_nul_and_escape_look_alikes,
                set_work_spec_rederives_the_whole_meta,
            ],
            pair: [
                wrong_backend_make_attempt,
                wrong_backend_set_parent,
            ],
        }
    };
}

/// Implementation detail of [`conformance_tests!`](crate::conformance_tests).
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_expand {
    (
        factory: ($factory:expr),
        single: [$($single:ident),* $(,)?],
        pair: [$($pair:ident),* $(,)?] $(,)?
    ) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $single() {
                let factory = $factory;
                $crate::conformance::$single(factory().await).await;
            }
        )*
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $pair() {
                let factory = $factory;
                let first = factory().await;
                let second = factory().await;
                $crate::conformance::$pair(first, second).await;
            }
        )*
    };
}
