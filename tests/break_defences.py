#!/usr/bin/env python3
"""Break each security defence on purpose, one at a time, and check that a test catches it.

Every mutation below removes or weakens one defence named in docs/SECURITY.md (an
invariant number or an attack), in the exact code that implements it. For each one the
script applies the change, builds, runs the tests SECURITY.md names for that defence,
and restores the file byte for byte (try/finally, then `git diff --quiet` on the file).

Results:
  CAUGHT   the mutant compiled and at least one of the named tests failed
  MISSED   the mutant compiled and every named test passed (a test gap)
  INVALID  the mutant did not compile (a mistake in this list; it counts as nothing)
  TIMEOUT  a test command ran past --timeout (reported, and treated as not caught)

Run from the repository root, on a tree where the mutated source files are committed
(the script refuses to touch a file with uncommitted changes):

    python3 tests/break_defences.py                 # every mutation, targeted tests
    python3 tests/break_defences.py --list          # list mutations, check every snippet
    python3 tests/break_defences.py --only ID[,ID]  # some mutations
    python3 tests/break_defences.py --full          # whole `cargo test --locked` per mutant
    python3 tests/break_defences.py --baseline      # only the tests docs/SECURITY.md names

How long: on the shared 2-core VM a mutant takes 2-150 s (an incremental rebuild of the
samizdat crate, a few seconds, then the filtered tests: the hostile-upstream and daemon
tests take about a minute); the whole list took 36 minutes (2026-11-29, 85 mutants) and 38 minutes (2026-12-02, 93 mutants,
run in parts with --only).
`--full` takes the whole suite's time per mutant (hours).
Cargo runs under `nice -n 10`, one at a time. Exit status: 0 only if every mutant was
CAUGHT. The Markdown table goes to stdout (and to --out FILE if given).
"""

import argparse
import os
import signal
import subprocess
import sys
import time

# Each mutation: id, defence (as named in docs/SECURITY.md), file, the exact original
# snippet (must occur exactly once), its replacement, what was broken (in words), and
# the tests to run: ("lib", FILTER) runs `cargo test --locked --lib FILTER`,
# ("it", FILTER) runs `cargo test --locked --test tests FILTER`. Filters of one kind are
# passed together to one test run (libtest accepts several filters). `tests` are the
# tests docs/SECURITY.md names for the defence; `added` are tests written by this
# campaign (tests/defences.rs) where those missed the mutant. `--baseline` runs only
# `tests`, to show the gap the added test closes.
MUTATIONS = [
    # ---- 1. Verified or not shown ------------------------------------------------
    dict(
        id="object-hash-skipped",
        defence="1 / tampered object",
        file="src/source.rs",
        old="if hasher.finish() != *hash {",
        new="if false && hasher.finish() != *hash {",
        what="`source::read_object` no longer compares the streamed object's hash with its address",
        tests=[
            ("it", "attacks::a_tampered_object_is_named_with_its_path_and_reason"),
            ("it", "http::a_tampered_object_served_over_http_is_refused"),
            ("it", "hostile::a_tampered_object_is_refused_and_the_last_good_snapshot_stays_served"),
        ],
    ),
    dict(
        id="object-size-skipped",
        defence="1 / truncated object",
        file="src/source.rs",
        old="if hasher.len() != size {",
        new="if false && hasher.len() != size {",
        what="`source::read_object` no longer checks that the object has its signed size",
        tests=[
            ("it", "attacks::truncated_and_oversized_objects_are_refused"),
            ("it", "hostile::a_short_content_length_then_close_is_refused_as_truncated"),
        ],
    ),
    dict(
        id="tree-hash-skipped",
        defence="1 / tampered manifest/tree",
        file="src/walk.rs",
        old="if bytes.len() as u64 != w.tree.len || bytes.len() > MAX_TREE || sha256(bytes) != *hash {",
        new="if bytes.len() as u64 != w.tree.len || bytes.len() > MAX_TREE {",
        what="`walk::Walk::feed` checks only a tree's length, not its hash; the one tree check now, for listing, bundles and sync alike",
        tests=[
            ("it", "attacks::a_tampered_tree_is_refused"),
            ("lib", "walk::tests::a_tree_that_is_not_wanted_or_does_not_match_is_refused_and_changes_nothing"),
        ],
    ),
    dict(
        id="bundle-object-hash-skipped",
        defence="1 / tampered object (bundles)",
        file="src/archive/read.rs",
        old="if hasher.finish() != h {",
        new="if false && hasher.finish() != h {",
        what="`archive::read` (`read_objects`, read.rs) installs a bundle's object without comparing its hash",
        tests=[
            ("it", "vectors::damaged_bundles_are_rejected"),
            ("it", "vectors::negative_vectors_fail_as_documented"),
            ("it", "attacks::a_bundle_with_a_corrupted_compressed_byte_is_refused"),
        ],
    ),
    dict(
        id="sync-object-unverified",
        defence="1 / tampered object (mirror sync)",
        file="src/mirror/sync.rs",
        old="source::read_object(up, h, size, &mut |b| tmp.write_all(b).map_err(|e| Error::io(&path, e)))?;",
        new="up.stream(RepoFile::Object(*h), size, &mut |b| tmp.write_all(b).map_err(|e| Error::io(&path, e)))?;",
        what="`sync::fetch_object` streams an object into the store without hashing it",
        tests=[("it", "hostile::a_tampered_object_is_refused_and_the_last_good_snapshot_stays_served")],
    ),
    dict(
        id="head-snapshot-binding",
        defence="1 / tampered manifest (head names another snapshot)",
        file="src/trust.rs",
        old="if snapshot_id != head.snapshot {",
        new="if false && snapshot_id != head.snapshot {",
        what="`trust::verify` accepts a snapshot other than the one the signed head names",
        tests=[
            ("it", "attacks::a_tampered_snapshot_or_head_is_refused"),
            ("it", "vectors::negative_vectors_fail_as_documented"),
        ],
    ),
    # ---- 2. No rollback ------------------------------------------------------------
    dict(
        id="rollback-lower-seq",
        defence="2 / replayed old snapshot",
        file="src/trust.rs",
        old="if n <= floor {",
        new="if false && n <= floor {",
        what="`trust::check_advance` accepts a lower sequence number",
        tests=[
            ("it", "attacks::import_refuses_rollback_to_an_older_snapshot"),
            ("it", "hostile::a_replayed_older_head_is_refused_as_a_rollback_and_the_newer_snapshot_stays_served"),
            ("it", "mirror::pushes_are_accepted_only_when_signed_and_newer_and_junk_leaves_nothing"),
        ],
    ),
    dict(
        id="rollback-keyset",
        defence="2 / keyset rollback",
        file="src/trust.rs",
        old="if new.keyset.version < current.keyset.version {",
        new="if false && new.keyset.version < current.keyset.version {",
        what="`trust::check_advance` accepts an older keyset version",
        tests=[("it", "attacks::a_keyset_rollback_is_refused")],
    ),
    dict(
        id="rollback-root-fork",
        defence="2 / root rotation with a forged chain (forked history)",
        file="src/trust.rs",
        old="if new.raw.roots[..current.raw.roots.len()].iter().zip(&current.raw.roots).any(|(a, b)| {",
        new="if false && new.raw.roots[..current.raw.roots.len()].iter().zip(&current.raw.roots).any(|(a, b)| {",
        what="`trust::check_advance` accepts a root chain that differs from the accepted one",
        tests=[("it", "attacks::root_rotation_is_followed_and_a_forged_chain_is_refused")],
        added=[("it", "defences::a_forked_root_history_is_refused_even_though_each_chain_verifies")],
    ),
    # ---- 3. Last good copy stays up -------------------------------------------------
    dict(
        id="sync-publish-first",
        defence="3 / mirror installs a snapshot before all objects verified",
        file="src/mirror/sync.rs",
        old="            fetch_missing(repo, up.source(), &v, limits)?;\n            repo.publish(&v)?;",
        new="            repo.publish(&v)?;\n            fetch_missing(repo, up.source(), &v, limits)?;",
        what="`sync::sync_from` moves the head before the missing objects are fetched and verified",
        tests=[
            ("it", "hostile::a_tampered_object_is_refused_and_the_last_good_snapshot_stays_served"),
            ("it", "hostile::a_connection_reset_in_the_middle_of_an_object_fails_the_update_cleanly"),
        ],
    ),
    dict(
        id="sync-error-not-reported",
        defence="3 / says why the update failed",
        file="src/mirror/mod.rs",
        old="Err(e) => entry.last_error = Some(e.to_string()),",
        new="Err(_) => entry.last_error = None,",
        what="`Mirror::sync_once` forgets an upstream's error instead of showing it in the status",
        tests=[("it", "hostile::a_tampered_object_is_refused_and_the_last_good_snapshot_stays_served")],
    ),
    # ---- 4. Crash-atomic ------------------------------------------------------------
    dict(
        id="object-written-in-place",
        defence="4 / partial object never served (temporary file + rename)",
        file="src/mirror/sync.rs",
        old="    let mut tmp = repo.temp_file()?;\n    let path = tmp.path().to_path_buf();\n    source::read_object(up, h, size, &mut |b| tmp.write_all(b).map_err(|e| Error::io(&path, e)))?;\n    repo.install(tmp.into_temp_path(), RepoFile::Object(*h))",
        new="    let path = repo.path(RepoFile::Object(*h));\n    let mut tmp = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;\n    source::read_object(up, h, size, &mut |b| tmp.write_all(b).map_err(|e| Error::io(&path, e)))?;\n    Ok(())",
        what="`sync::fetch_object` streams each object directly into its final name (no temporary file, so no `Writer::install` rename)",
        tests=[
            ("it", "crash::a_mirror_killed_mid_sync_restarts_consistent_and_fetches_each_object_about_once"),
            ("it", "hostile::a_tampered_object_is_refused_and_the_last_good_snapshot_stays_served"),
        ],
    ),
    dict(
        id="has-len-name-only",
        defence="4 / power cut left empty objects (size-checked presence)",
        file="src/store.rs",
        old="fs::metadata(self.path(f)).is_ok_and(|m| m.len() == len)",
        new="fs::metadata(self.path(f)).is_ok_and(|_| len == len)",
        what="`Store::has_complete` (was `Repo::has_len`) trusts a file's name and ignores its size",
        tests=[
            ("it", "crash::a_power_cut_that_left_empty_objects_is_repaired_by_the_next_sync"),
            ("it", "crash::a_bundle_rerun_after_a_power_cut_that_left_an_empty_object_publishes_a_verifiable_snapshot"),
        ],
    ),
    dict(
        id="local-tree-unchecked",
        defence="4 / power cut left an empty tree",
        file="src/mirror/sync.rs",
        old="        walk.feed(&w.tree.hash, &bytes)?;\n        repo.put_new(f, &bytes)?;",
        new="        walk.feed(&w.tree.hash, &bytes)?;\n        if !repo.has(f) {\n            repo.put_new(f, &bytes)?;\n        }",
        what="`sync::fetch_missing` trusts a stored tree by its name: a damaged local copy is fetched and checked again (the walker refuses it) but not replaced on disk",
        tests=[("it", "crash::a_power_cut_that_left_an_empty_tree_is_repaired_by_the_next_sync")],
    ),
    dict(
        id="writer-lock-skipped",
        defence="4 / a writer lock",
        file="src/store.rs",
        old="rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive)",
        new="Ok::<(), std::io::Error>(())",
        what="`store::lock` (behind `Writer::open`) takes no lock, so two writers interleave",
        tests=[("lib", "store::tests::a_second_writer_is_refused_while_the_first_holds_the_repository")],
    ),
    dict(
        id="crash-leftovers-kept",
        defence="4 / leftovers swept on open",
        file="src/store.rs",
        old="if dirty.exists() {",
        new="if false && dirty.exists() {",
        what="`Writer::clean_tmp` no longer sweeps a crashed writer's `.tmp-*` files next to objects",
        tests=[("lib", "store::tests::a_crashed_writers_files_next_to_objects_are_swept_and_a_clean_close_leaves_no_marker")],
    ),
    dict(
        id="gc-fails-open",
        defence="3 / garbage collection deletes nothing unless every kept snapshot lists",
        file="src/store.rs",
        old="            let listing = source::list(&self.store, &s)\n                .map_err(|e| e.at(format!(\"garbage collection (snapshot seq {}); nothing deleted\", s.seq)))?;",
        new="            let Ok(listing) = source::list(&self.store, &s) else { break };",
        what="`Writer::collect_garbage` (moved here from mirror/sync.rs) stops at a kept snapshot it cannot list and deletes everything not listed so far, instead of failing closed",
        tests=[],
        added=[("it", "defences::garbage_collection_that_cannot_list_a_kept_snapshot_deletes_nothing")],
    ),
    # ---- 5. Staleness visible, not fatal -----------------------------------------------
    dict(
        id="freshness-never-stale",
        defence="5 / old head served forever (freeze)",
        file="src/trust.rs",
        old="Freshness { age: now.saturating_sub(v.snapshot.created), warnings }",
        new="Freshness { age: now.saturating_sub(v.snapshot.created), warnings: { drop(warnings); Vec::new() } }",
        what="`trust::freshness` never reports a state as stale",
        tests=[("it", "attacks::an_expired_snapshot_still_verifies_and_is_reported_stale")],
    ),
    dict(
        id="expired-snapshot-fatal",
        defence="5, 12 / staleness is not fatal",
        file="src/trust.rs",
        old="    let snapshot_signers = require_keyset(&senv, &keyset, snapshot.created, &swhat)?;\n",
        new="    let snapshot_signers = require_keyset(&senv, &keyset, snapshot.created, &swhat)?;\n"
        "    if now() > snapshot.expires {\n"
        "        return Err(Error::verify(&swhat, \"expired\"));\n"
        "    }\n",
        what="`trust::verify` refuses an expired snapshot (staleness made fatal)",
        tests=[("it", "attacks::an_expired_snapshot_still_verifies_and_is_reported_stale")],
    ),
    # ---- 6. Bounded cost ------------------------------------------------------------------
    dict(
        id="http-body-cap",
        defence="6 / endless body",
        file="src/http.rs",
        old="if self.total > self.max {",
        new="if false && self.total > self.max {",
        what="`http::BodyReader` no longer stops a body at the signed size",
        tests=[
            ("it", "hostile::an_endless_object_body_is_cut_off_at_its_signed_size"),
            ("it", "hostile::an_endless_chunked_object_body_is_cut_off_at_its_signed_size"),
        ],
    ),
    dict(
        id="read-object-uncapped",
        defence="6 / endless body (object size cap on sync streams)",
        file="src/source.rs",
        old="let found = src.stream(f, size, &mut |b| {",
        new="let found = src.stream(f, u64::MAX / 2, &mut |b| {",
        what="`source::read_object` streams an object without the signed size as its cap",
        tests=[
            ("it", "hostile::an_endless_object_body_is_cut_off_at_its_signed_size"),
            ("it", "hostile::an_endless_chunked_object_body_is_cut_off_at_its_signed_size"),
            ("it", "attacks::truncated_and_oversized_objects_are_refused"),
        ],
    ),
    dict(
        id="http-content-length-cap",
        defence="6 / wrong Content-Length",
        file="src/http.rs",
        old="if len > max {",
        new="if false && len > max {",
        what="`HttpSource::open` no longer refuses a Content-Length above the signed size",
        tests=[("it", "hostile::a_content_length_larger_than_the_signed_size_is_refused_before_reading_the_body")],
    ),
    dict(
        id="http-idle-timeout",
        defence="6 / slow drip (idle timeout)",
        file="src/http.rs",
        old="let frame = match tokio::time::timeout(self.idle, self.body.frame()).await {",
        new="let frame = match Ok::<_, tokio::time::error::Elapsed>(self.body.frame().await) {",
        what="`http::BodyReader` waits for the next body chunk forever (no idle timeout)",
        tests=[
            ("it", "hostile::an_upstream_that_drips_a_few_bytes_a_second_is_cut_off_as_slow_retrieval"),
            ("it", "hostile::a_connection_reset_in_the_middle_of_an_object_fails_the_update_cleanly"),
        ],
        added=[("it", "hostile::an_upstream_that_goes_silent_in_the_middle_of_an_object_is_cut_off")],
    ),
    dict(
        id="http-min-rate",
        defence="6 / slow drip (minimum rate)",
        file="src/http.rs",
        old="if elapsed > self.idle && (self.total as f64) < self.min_rate as f64 * elapsed.as_secs_f64() {",
        new="if false && elapsed > self.idle && (self.total as f64) < self.min_rate as f64 * elapsed.as_secs_f64() {",
        what="`http::BodyReader` no longer enforces the minimum transfer rate",
        tests=[("it", "hostile::an_upstream_that_drips_a_few_bytes_a_second_is_cut_off_as_slow_retrieval")],
    ),
    dict(
        id="http-response-header-timeout",
        defence="6 / slow drip of response headers",
        file="src/http.rs",
        old="tokio::time::timeout(self.opts.connect_timeout, self.pool.request(req))",
        new="async { Ok::<_, tokio::time::error::Elapsed>(self.pool.request(req).await) }",
        what="`HttpSource::open` waits for response headers forever",
        tests=[("it", "hostile::an_upstream_that_drips_its_response_headers_is_cut_off")],
    ),
    dict(
        id="bundle-object-len-unchecked",
        defence="6 / zip/compression bomb",
        file="src/archive/read.rs",
        old="        if len != want {\n            return Err(Error::verify(\n                &name,\n                format!(\"object {h} (/{path}) is {len} bytes, the signed size is {want}\"),",
        new="        if false && len != want {\n            return Err(Error::verify(\n                &name,\n                format!(\"object {h} (/{path}) is {len} bytes, the signed size is {want}\"),",
        what="`archive::read` (`read_objects`, read.rs) decompresses an object record of any declared length, not the signed size",
        tests=[("it", "attacks::a_compression_bomb_is_stopped_at_the_signed_size")],
    ),
    dict(
        id="bundle-doc-cap",
        defence="6, 8 / allocation bounded (bundle metadata records)",
        file="src/archive/format.rs",
        old="if len > MAX_ENVELOPE {",
        new="if false && len > MAX_ENVELOPE {",
        what="`Records::doc` (archive/format.rs) allocates whatever length a metadata record declares (up to 4 GiB)",
        tests=[
            ("it", "attacks::a_bundle_truncated_anywhere_or_with_trailing_bytes_is_refused"),
            ("it", "attacks::malformed_metadata_files_are_refused_without_panic"),
            ("it", "vectors::damaged_bundles_are_rejected"),
            ("it", "fuzz::mutated_corpus_inputs_never_panic"),
        ],
        added=[("it", "defences::a_bundle_record_claiming_a_huge_length_is_refused_before_it_is_allocated")],
    ),
    dict(
        id="push-declared-cap",
        defence="6, 11 / oversized push (Content-Length)",
        file="src/mirror/serve/push.rs",
        old="if declared.is_some_and(|n| n > max) {",
        new="if false && declared.is_some_and(|n| n > max) {",
        what="`serve::push` (serve/push.rs) no longer refuses a declared upload above `max_upload` up front",
        tests=[("it", "mirror::pushes_are_accepted_only_when_signed_and_newer_and_junk_leaves_nothing")],
        added=[("it", "defences::a_push_declaring_more_than_max_upload_is_refused_before_its_body_is_read")],
    ),
    dict(
        id="push-streamed-cap",
        defence="6, 11 / oversized push (streamed body)",
        file="src/mirror/serve/push.rs",
        old="if total > max {",
        new="if false && total > max {",
        what="`serve::push` (serve/push.rs) no longer counts the streamed upload against `max_upload`",
        tests=[("it", "mirror::pushes_are_accepted_only_when_signed_and_newer_and_junk_leaves_nothing")],
        added=[("it", "defences::a_chunked_push_larger_than_max_upload_is_cut_off_and_leaves_nothing")],
    ),
    dict(
        id="slow-reader-kept",
        defence="6 / slow read (stalled-connection guard)",
        file="src/mirror/serve/stall.rs",
        old="        let limit = self.limit;\n        let timer =",
        new="        if self.limit > Duration::ZERO {\n            return Poll::Pending;\n        }\n        let limit = self.limit;\n        let timer =",
        what="`StallGuard` never fails a write the client does not take",
        tests=[("it", "mirror::a_slow_reading_client_is_disconnected_instead_of_holding_the_response")],
    ),
    dict(
        id="make-room-removed",
        defence="6 / thousands of idle connections (make-room rule)",
        file="src/mirror/serve/mod.rs",
        old="                if shared.waiting.evict_oldest() {\n                    mirror.metrics().connections_rejected.fetch_add(1, Ordering::Relaxed);\n                }\n",
        new="",
        what="the accept loop (serve/mod.rs) no longer closes the oldest silent connection when every slot is taken",
        tests=[("it", "mirror::hundreds_of_idle_connections_do_not_starve_a_legitimate_reader")],
    ),
    dict(
        id="first-byte-timeout",
        defence="6 / idle connections (first byte within header_timeout)",
        file="src/mirror/serve/stall.rs",
        old="let limit = self.first.as_ref().map_or(self.limit, |(l, _)| *l);",
        new="let limit = self.limit;",
        what="`StallGuard` gives a connection that never sent a byte the full idle_timeout, not header_timeout",
        tests=[("it", "mirror::hundreds_of_idle_connections_do_not_starve_a_legitimate_reader")],
        added=[("it", "defences::a_connection_that_never_sends_a_byte_is_closed_after_the_header_timeout")],
    ),
    dict(
        id="header-read-timeout",
        defence="6 / slowloris (request header timeout)",
        file="src/mirror/serve/mod.rs",
        old=".header_read_timeout(limits.header_timeout)",
        new=".header_read_timeout(Duration::from_secs(86400))",
        what="the HTTP/1 server waits a day for a request's headers to complete",
        tests=[
            ("it", "mirror::hundreds_of_idle_connections_do_not_starve_a_legitimate_reader"),
            ("it", "mirror::huge_headers_are_refused_and_the_daemon_keeps_serving"),
        ],
        added=[("it", "defences::a_slowloris_client_dripping_its_headers_is_cut_off_at_the_header_timeout")],
    ),
    dict(
        id="header-size-cap",
        defence="6 / huge headers",
        file="src/mirror/serve/mod.rs",
        old=".max_buf_size(limits.max_header_bytes.max(8192))",
        new=".max_buf_size(64 << 20)",
        what="the HTTP/1 server buffers request headers up to 64 MiB",
        tests=[("it", "mirror::huge_headers_are_refused_and_the_daemon_keeps_serving")],
    ),
    dict(
        id="connection-cap-removed",
        defence="6 / connections limited (semaphore)",
        file="src/mirror/mod.rs",
        old="Arc::new(tokio::sync::Semaphore::new(mirror.config().limits.max_connections))",
        new="Arc::new(tokio::sync::Semaphore::new(tokio::sync::Semaphore::MAX_PERMITS))",
        what="the mirror accepts any number of simultaneous connections",
        tests=[("it", "mirror::hundreds_of_idle_connections_do_not_starve_a_legitimate_reader")],
        added=[("it", "defences::open_connections_never_exceed_max_connections")],
    ),
    dict(
        id="store-max-objects",
        defence="6 / a volunteer's disk: limits.max_objects",
        file="src/store.rs",
        old="if s.files > self.max_objects {",
        new="if false && s.files > self.max_objects {",
        what="`StoreLimits::check_snapshot` lets a snapshot list any number of files",
        tests=[("it", "mirror::object_count_and_size_limits_hold_on_every_path_into_the_store")],
    ),
    dict(
        id="store-max-object-size",
        defence="6 / a volunteer's disk: limits.max_object_size",
        file="src/store.rs",
        old="if size > self.max_object_size {",
        new="if false && size > self.max_object_size {",
        what="`StoreLimits::check_file` lets a file of any size in",
        tests=[("it", "mirror::object_count_and_size_limits_hold_on_every_path_into_the_store")],
    ),
    dict(
        id="bundle-object-count-unchecked",
        defence="6 / limits.max_objects on pushes and streamed bundles",
        file="src/archive/read.rs",
        old="        limits.check_snapshot(&verified.snapshot)?;",
        new="        let _ = limits.check_snapshot(&verified.snapshot);",
        what="`archive::read` (read.rs; push, bundle from another mirror) skips the max_objects check",
        tests=[("it", "mirror::object_count_and_size_limits_hold_on_every_path_into_the_store")],
    ),
    dict(
        id="bundle-object-size-unchecked",
        defence="6 / limits.max_object_size on pushes and streamed bundles",
        file="src/archive/read.rs",
        old="limits.check_file(&f.path, f.size)?;",
        new="let _ = limits.check_file(&f.path, f.size);",
        what="`archive::read` (`read_trees`, read.rs; push, bundle from another mirror) skips the max_object_size check",
        tests=[("it", "mirror::object_count_and_size_limits_hold_on_every_path_into_the_store")],
    ),
    dict(
        id="sync-object-count-unchecked",
        defence="6 / limits.max_objects on object-by-object sync",
        file="src/mirror/sync.rs",
        old="limits.store().check_snapshot(&v.snapshot)?;",
        new="let _ = limits.store().check_snapshot(&v.snapshot);",
        what="`sync::sync_from` skips the max_objects check",
        tests=[("it", "mirror::object_count_and_size_limits_hold_on_every_path_into_the_store")],
    ),
    dict(
        id="sync-object-size-unchecked",
        defence="6 / limits.max_object_size on object-by-object sync",
        file="src/mirror/sync.rs",
        old="store_limits.check_file(&f.path, f.size)?;",
        new="let _ = store_limits.check_file(&f.path, f.size);",
        what="`sync::fetch_missing` skips the max_object_size check",
        tests=[("it", "mirror::object_count_and_size_limits_hold_on_every_path_into_the_store")],
    ),
    # ---- 7. Paths are hostile -------------------------------------------------------
    dict(
        id="name-dotdot",
        defence="7 / path traversal (`..`)",
        file="src/path.rs",
        old='if name == "." || name == ".." {',
        new='if name == "." {',
        what="`path::check_name` accepts `..`",
        tests=[
            ("lib", "path::tests::hostile_paths_are_rejected"),
            ("it", "attacks::extract_refuses_traversal_duplicates_and_case_collisions_in_signed_trees"),
        ],
    ),
    dict(
        id="name-backslash",
        defence="7 / backslash in names",
        file="src/path.rs",
        old="if name.contains('\\\\') {",
        new="if false && name.contains('\\\\') {",
        what="`path::check_name` accepts a backslash",
        tests=[
            ("lib", "path::tests::hostile_paths_are_rejected"),
            ("lib", "meta::tests::trees_with_duplicate_traversal_or_case_colliding_names_are_rejected"),
        ],
    ),
    dict(
        id="name-nul-and-control",
        defence="7 / NUL in names",
        file="src/path.rs",
        old="    if name.contains('\\0') {\n        return bad(\"NUL in name\");\n    }\n"
        "    if name.chars().any(char::is_control) {",
        new="    if false && name.contains('\\0') {\n        return bad(\"NUL in name\");\n    }\n"
        "    if false && name.chars().any(char::is_control) {",
        what="`path::check_name` accepts NUL and other control characters (both rules: each covers NUL)",
        tests=[("lib", "path::tests::hostile_paths_are_rejected")],
    ),
    dict(
        id="name-windows-device",
        defence="7 / Windows device names",
        file="src/path.rs",
        old="if WINDOWS_DEVICE_NAMES.contains(&stem.as_str()) {",
        new="if false && WINDOWS_DEVICE_NAMES.contains(&stem.as_str()) {",
        what="`path::check_name` accepts CON, NUL.txt, COM1 ...",
        tests=[("lib", "path::tests::hostile_paths_are_rejected")],
    ),
    dict(
        id="name-nfc",
        defence="7 / Unicode look-alikes (one normal form)",
        file="src/path.rs",
        old="if !is_nfc(name) {",
        new="if false && !is_nfc(name) {",
        what="`path::check_name` accepts names not in NFC",
        tests=[("lib", "path::tests::hostile_paths_are_rejected")],
    ),
    dict(
        id="siblings-case-collision",
        defence="7 / case collisions",
        file="src/path.rs",
        old="if !folded.insert(fold(name)) {",
        new="if false && !folded.insert(fold(name)) {",
        what="`path::check_siblings` accepts names that differ only by case",
        tests=[
            ("lib", "path::tests::siblings_must_be_sorted_unique_and_case_distinct"),
            ("it", "attacks::extract_refuses_traversal_duplicates_and_case_collisions_in_signed_trees"),
            ("it", "attacks::unsafe_names_and_case_collisions_in_the_site_are_refused"),
        ],
    ),
    dict(
        id="siblings-order",
        defence="7 / duplicate paths (strict order)",
        file="src/path.rs",
        old="if p.as_bytes() >= name.as_bytes() {",
        new="if false && p.as_bytes() >= name.as_bytes() {",
        what="`path::check_siblings` accepts unsorted names (duplicates are then left to the case rule)",
        tests=[("lib", "path::tests::siblings_must_be_sorted_unique_and_case_distinct")],
    ),
    dict(
        id="tree-names-unchecked",
        defence="7 / path traversal in manifest",
        file="src/meta.rs",
        old="            path::check_name(&e.name, &path::join(dir, &e.name))?;",
        new="            let _ = path::check_name(&e.name, &path::join(dir, &e.name));",
        what="`Tree::decode` no longer checks entry names",
        tests=[
            ("lib", "meta::tests::trees_with_duplicate_traversal_or_case_colliding_names_are_rejected"),
            ("it", "attacks::extract_refuses_traversal_duplicates_and_case_collisions_in_signed_trees"),
        ],
    ),
    dict(
        id="url-path-unchecked",
        defence="7 / percent-encoded traversal in URLs",
        file="src/mirror/serve/route.rs",
        old="crate::path::split(&p).map_err(|_| \"bad path\")?;",
        new="let _ = crate::path::split(&p);",
        what="`serve::route::site_path` no longer checks the decoded URL path",
        tests=[
            ("lib", "mirror::serve::route::tests::url_paths_map_to_checked_site_paths"),
            ("it", "mirror::the_site_is_served_byte_exact_with_correct_http_semantics"),
        ],
    ),
    dict(
        id="repo-any-path-served",
        defence="7 / repository paths that are not format files",
        file="src/layout.rs",
        old="(f.rel() == rel).then_some(f)",
        new="Some(f)",
        what="`layout::RepoFile::parse` (the serving whitelist, was `serve::repo_rel_ok`) accepts any spelling that parses (another fan-out directory, `trees/../H`, `roots/01.root`), not only the one name of a format file; a path outside the format (`local/`, `tmp/`) can no longer be expressed as a `RepoFile`, so the old `_ => true` has no counterpart",
        tests=[("lib", "layout::tests::every_file_kind_round_trips_and_nothing_else_parses")],
    ),
    dict(
        id="extract-create-new",
        defence="7 / extraction never writes through an existing file",
        file="src/checkout.rs",
        old="let mut f = fs::OpenOptions::new().write(true).create_new(true).open(&first).at(&first)?;",
        new="let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).open(&first).at(&first)?;",
        what="`checkout::write_object` opens the first copy with create+truncate instead of create_new",
        tests=[
            ("it", "attacks::extract_never_writes_through_a_symlink_at_the_output"),
            ("it", "attacks::extract_refuses_traversal_duplicates_and_case_collisions_in_signed_trees"),
        ],
        added=[("it", "defences::extraction_never_writes_through_a_symlink_planted_in_its_staging_directory")],
    ),
    dict(
        id="extract-output-symlink",
        defence="7 / extraction never follows a symlink",
        file="src/checkout.rs",
        old="let empty_dir = out.is_dir() && !out.is_symlink() && fs::read_dir(out).at(out)?.next().is_none();",
        new="let empty_dir = out.is_dir() && fs::read_dir(out).at(out)?.next().is_none();",
        what="`checkout::extract` accepts a symlink to an empty directory as its output",
        tests=[("it", "attacks::extract_never_writes_through_a_symlink_at_the_output")],
    ),
    dict(
        id="bundle-time-symlink",
        defence="7 / symlink in the site directory at bundle time",
        file="src/publish/scan.rs",
        old="if ft.is_symlink() {",
        new="if false && ft.is_symlink() {",
        what="`publish::scan` (publish/scan.rs) no longer singles out symbolic links",
        tests=[("it", "attacks::symlinks_and_special_files_in_the_site_are_refused_or_skipped_with_a_warning")],
    ),
    # ---- 8. Decoders are total ------------------------------------------------------
    dict(
        id="cbor-trailing-bytes",
        defence="8 / trailing bytes rejected",
        file="src/cbor.rs",
        old="    r.finish()?;\n",
        new="    let _ = r.finish();\n",
        what="`cbor::decode_canonical` ignores bytes after the item (the canonical re-encode still differs)",
        tests=[
            ("lib", "sign::tests::envelopes_with_trailing_bytes_or_unknown_algorithms_are_rejected"),
            ("lib", "meta::tests::trailing_bytes_and_truncation_are_rejected"),
        ],
    ),
    dict(
        id="cbor-canonical",
        defence="8 / one canonical encoding",
        file="src/cbor.rs",
        old="if encode(&value) != bytes {",
        new="if false && encode(&value) != bytes {",
        what="`cbor::decode_canonical` no longer re-encodes and compares",
        tests=[("lib", "meta::tests::")],
    ),
    dict(
        id="cbor-count-cap",
        defence="8 / allocation bounded by input (count caps)",
        file="src/cbor.rs",
        old="Some(len) if len <= max => Ok(len as usize),",
        new="Some(len) if len <= max || len > 0 => Ok(len as usize),",
        what="`Reader::array` ignores the per-schema item cap",
        tests=[("lib", "meta::tests::"), ("lib", "sign::tests::"), ("it", "fuzz::mutated_corpus_inputs_never_panic"),
               ("it", "attacks::malformed_metadata_files_are_refused_without_panic")],
        added=[("it", "defences::documents_with_more_items_than_their_schema_allows_are_refused")],
    ),
    dict(
        id="listing-depth-cap",
        defence="8 / nesting depth bounded (trees)",
        file="src/walk.rs",
        old="use crate::path::{self, MAX_DEPTH};",
        new="use crate::path;\nconst MAX_DEPTH: usize = usize::MAX;",
        what="`walk::Walk` (the one place: its `feed` and `finish` checks replace the copies in `source::list`, `archive::read` and `sync::fetch_missing`) walks trees nested deeper than 64 levels",
        tests=[
            ("it", "attacks::listing_checks_declared_totals_against_the_trees"),
            ("it", "attacks::malformed_metadata_files_are_refused_without_panic"),
        ],
        added=[("it", "defences::trees_nested_deeper_than_64_levels_are_refused")],
    ),
    dict(
        id="walk-visit-budget-at-feed",
        defence="6 / repeated empty subtrees (trees fetched)",
        file="src/walk.rs",
        old="if self.trees.len() as u64 >= self.max_visits {",
        new="if false && self.trees.len() as u64 >= self.max_visits {",
        what="`walk::Walk::feed` no longer counts distinct trees against the visit budget as they arrive, so a caller fetches every distinct tree before `finish` refuses",
        tests=[("lib", "walk::tests::repeated_empty_subtrees_exhaust_the_visit_budget")],
        added=[("lib", "walk::tests::the_visit_budget_is_spent_as_distinct_trees_are_fed")],
    ),
    dict(
        id="walk-unwanted-tree-accepted",
        defence="1 / trees not named by the snapshot",
        file="src/walk.rs",
        old="        let Some(w) = self.wanted.get(hash) else {\n            return Err(Error::verify(\n                format!(\"tree {hash}\"),\n                \"not referenced by the snapshot, or sent twice\",\n            ));\n        };",
        new="        let Some(w) = self.wanted.get(hash) else {\n            return Ok(());\n        };",
        what="`walk::Walk::feed` silently accepts a tree the walk does not want (not named, or sent twice) instead of refusing it",
        tests=[
            ("lib", "walk::tests::a_tree_that_is_not_wanted_or_does_not_match_is_refused_and_changes_nothing"),
            ("it", "attacks::a_bundle_cut_at_every_record_boundary_is_refused_as_truncated_and_leaves_nothing"),
        ],
    ),
    # ---- 9. Signatures mean one thing ---------------------------------------------------
    dict(
        id="verify-not-strict",
        defence="9 / strict verification (small order, non-canonical)",
        file="src/keys.rs",
        old="    if vk.is_weak() {\n        return false;\n    }\n    let sig = ed25519_dalek::Signature::from_bytes(sig);\n"
        "    vk.verify_strict(message, &sig).is_ok()",
        new="    let sig = ed25519_dalek::Signature::from_bytes(sig);\n"
        "    ed25519_dalek::Verifier::verify(&vk, message, &sig).is_ok()",
        what="`keys::verify_strict` uses plain `verify` and lets weak (small-order) keys through",
        tests=[("lib", "keys::tests::strict_verification_rejects_small_order_keys_and_bad_signatures")],
    ),
    dict(
        id="any-signature-accepted",
        defence="9 / forged signature",
        file="src/keys.rs",
        old="    vk.verify_strict(message, &sig).is_ok()",
        new="    let _ = (message, sig);\n    true",
        what="`keys::verify_strict` accepts any signature from a well-formed key",
        tests=[
            ("lib", "keys::tests::strict_verification_rejects_small_order_keys_and_bad_signatures"),
            ("it", "attacks::a_tampered_snapshot_or_head_is_refused"),
            ("it", "hostile::a_head_with_a_forged_signature_is_refused"),
        ],
    ),
    dict(
        id="domain-separation-dropped",
        defence="9 / per-role domain-separation prefix",
        file="src/sign.rs",
        old='    m.extend_from_slice(b"samizdat-v1/");\n    m.extend_from_slice(role.label().as_bytes());\n    m.push(0);\n',
        new="    let _ = role;\n",
        what="`sign::signing_input` signs the bare body, the same bytes for every role",
        tests=[
            ("lib", "sign::tests::a_signature_for_one_role_does_not_verify_as_another"),
            ("it", "vectors::vectors_match_the_committed_files_and_verify"),
        ],
    ),
    # ---- 10. Keys can fail ----------------------------------------------------------
    dict(
        id="threshold-repeats-count",
        defence="10 / threshold met by repeating one key (envelope)",
        file="src/sign.rs",
        old="        let signers = self.valid_signers(allowed);\n        if (signers.len() as u64) < threshold {",
        new="        let signers = self.valid_signers(allowed);\n"
        "        if (self.sigs.iter().filter(|s| signers.contains(&s.key)).count() as u64) < threshold {",
        what="`Signed::require` counts every signature by a valid key, repeats included",
        tests=[
            ("lib", "sign::tests::repeating_one_signature_does_not_meet_a_threshold_of_two"),
            ("it", "attacks::a_threshold_is_not_met_by_repeating_one_keys_signature"),
        ],
    ),
    dict(
        id="threshold-repeats-count-keyset",
        defence="10 / threshold met by repeating one key (snapshot/head)",
        file="src/trust.rs",
        old="if (signers.len() as u64) < keyset.threshold {",
        new="if (env.sigs.iter().filter(|s| signers.contains(&s.key)).count() as u64) < keyset.threshold {",
        what="`trust::require_keyset` counts every signature by a valid key, repeats included",
        tests=[("it", "attacks::a_threshold_is_not_met_by_repeating_one_keys_signature")],
    ),
    dict(
        id="unknown-key-accepted",
        defence="10 / snapshot signed by an unknown key",
        file="src/sign.rs",
        old="if ok.contains(&s.key) || !allowed(&s.key) {",
        new="if ok.contains(&s.key) {",
        what="`Signed::valid_signers` counts a valid signature by any key, trusted or not",
        tests=[
            ("it", "attacks::a_snapshot_signed_by_an_unknown_key_is_refused"),
            ("it", "attacks::a_snapshot_signed_by_a_revoked_key_is_refused"),
        ],
    ),
    dict(
        id="revoked-key-accepted",
        defence="2, 10 / snapshot signed by a revoked key",
        file="src/trust.rs",
        old="let allowed = |k: &PublicKey| keyset.active(k).is_some_and(|e| e.expires >= created);",
        new="let allowed = |k: &PublicKey| {\n"
        "        keyset.active(k).is_some_and(|e| e.expires >= created) || keyset.revocation(k).is_some()\n    };",
        what="`trust::require_keyset` still accepts signatures by revoked keys",
        tests=[
            ("it", "attacks::a_snapshot_signed_by_a_revoked_key_is_refused"),
            ("it", "attacks::a_fast_forward_by_a_stolen_key_is_undone_by_rotation_without_re_pinning"),
        ],
    ),
    dict(
        id="key-expiry-ignored",
        defence="2, 10 / snapshot signed by an expired key",
        file="src/trust.rs",
        old="let allowed = |k: &PublicKey| keyset.active(k).is_some_and(|e| e.expires >= created);",
        new="let allowed = |k: &PublicKey| keyset.active(k).is_some_and(|e| e.expires >= created.min(e.expires));",
        what="`trust::require_keyset` ignores key expiry",
        tests=[("it", "attacks::a_snapshot_made_after_its_key_expired_is_refused_but_an_older_one_stays_authentic")],
    ),
    dict(
        id="key-expiry-by-clock",
        defence="12 / key expiry judged against the document's own time",
        file="src/trust.rs",
        old="let allowed = |k: &PublicKey| keyset.active(k).is_some_and(|e| e.expires >= created);",
        new="let allowed = |k: &PublicKey| keyset.active(k).is_some_and(|e| e.expires >= created.max(now()));",
        what="`trust::require_keyset` judges key expiry by the clock, so an old bundle locks a reader out",
        tests=[("it", "attacks::a_snapshot_made_after_its_key_expired_is_refused_but_an_older_one_stays_authentic")],
    ),
    dict(
        id="fast-forward-floor",
        defence="10 / fast-forward by a compromised key, then recovery",
        file="src/trust.rs",
        old="let floor = recovery_floor(current, new);",
        new="let floor = current.snapshot.seq.max(recovery_floor(current, new));",
        what="`trust::check_advance` ignores revocations: a stolen key's fast-forward stays the floor (lockout)",
        tests=[
            ("it", "attacks::a_fast_forward_by_a_stolen_key_is_undone_by_rotation_without_re_pinning"),
            ("it", "drill::a_stolen_signing_key_is_recovered_from_by_rotation_without_re_pinning"),
        ],
    ),
    dict(
        id="floor-any-revocation",
        defence="2, 10 / rollback floor lowered only when the unrevoked signers fall below the threshold",
        file="src/trust.rs",
        old="candidates.sort_unstable_by(|a, b| b.cmp(a));",
        new="candidates.sort_unstable();",
        what="`trust::recovery_floor` drops to the lowest revocation bound, so revoking one of two signers opens a rollback",
        tests=[
            ("it", "attacks::revoking_one_of_two_signers_does_not_lower_the_rollback_floor"),
            ("it", "attacks::a_fast_forward_by_a_stolen_key_is_undone_by_rotation_without_re_pinning"),
        ],
    ),
    dict(
        id="root-link-unsigned-by-old",
        defence="10 / root rotation with a forged chain",
        file="src/trust.rs",
        old='env.require(prev.threshold, &format!("{what} (signatures by previous root)"), |k| {',
        new='env.require(0, &format!("{what} (signatures by previous root)"), |k| {',
        what="`trust::verify_roots` accepts a new root that the old root did not sign",
        tests=[("it", "attacks::root_rotation_is_followed_and_a_forged_chain_is_refused")],
    ),
    dict(
        id="root-link-prev-hash",
        defence="10 / root rotation with a forged chain (prev link)",
        file="src/trust.rs",
        old="if root.prev != Some(sha256(pb)) {",
        new="if false && root.prev != Some(sha256(pb)) {",
        what="`trust::verify_roots` does not check that a root links to the previous root",
        tests=[("it", "attacks::root_rotation_is_followed_and_a_forged_chain_is_refused")],
    ),
    dict(
        id="keyset-not-newest-root",
        defence="10 / keyset signed under an old root",
        file="src/trust.rs",
        old="if keyset.root_version != root.version {",
        new="if false && keyset.root_version != root.version {",
        what="`trust::verify` accepts a keyset made under an older root",
        tests=[("it", "attacks::a_keyset_must_be_signed_by_the_newest_root")],
        added=[("it", "defences::a_keyset_made_under_an_older_root_is_refused_after_rotation")],
    ),
    dict(
        id="keyset-unsigned-by-root",
        defence="10 / keyset certified by the root",
        file="src/trust.rs",
        old="kenv.require(root.threshold, &kwhat, |k| root.keys.contains(k))?;",
        new="kenv.require(0, &kwhat, |k| root.keys.contains(k))?;",
        what="`trust::verify` accepts a keyset without the root's signatures",
        tests=[
            ("it", "attacks::a_keyset_must_be_signed_by_the_newest_root"),
            ("it", "attacks::a_keyset_rollback_is_refused"),
            ("it", "vectors::negative_vectors_fail_as_documented"),
        ],
    ),
    dict(
        id="secret-key-world-readable",
        defence="10 / secret keys written mode 0600",
        file="src/keyfile.rs",
        old="crate::fsutil::write_new(path, text.as_bytes(), 0o600)",
        new="crate::fsutil::write_new(path, text.as_bytes(), 0o644)",
        what="`SecretKey::save` (now in keyfile.rs) writes a new key file world-readable",
        tests=[
            ("lib", "keyfile::tests::secret_key_files_are_private_and_not_overwritten"),
            ("it", "cli::keygen_writes_private_secret_files_and_refuses_to_overwrite"),
        ],
    ),
    dict(
        id="secret-key-clobbered",
        defence="10 / secret files create-new",
        file="src/fsutil.rs",
        old="tmp.persist_noclobber(path)",
        new="tmp.persist(path)",
        what="`fsutil::write_new` (the last step of `SecretKey::save` without --force) renames over a key file that appeared since the existence check",
        tests=[
            ("lib", "keyfile::tests::a_key_file_that_appears_during_a_save_is_not_replaced"),
            ("lib", "keyfile::tests::secret_key_files_are_private_and_not_overwritten"),
            ("it", "cli::keygen_writes_private_secret_files_and_refuses_to_overwrite"),
        ],
    ),
    # ---- 11. A signature is the only login --------------------------------------------
    dict(
        id="push-not-staged",
        defence="11 / a rejected push leaves nothing behind",
        file="src/archive/read.rs",
        old="            Install::Atomic => Box::new(Staged::new(store)?),",
        new="            Install::Atomic => Box::new(Direct { store }),",
        what="`archive::read` (read.rs) installs a push's objects as they verify (the `Direct` sink) instead of staging them",
        tests=[
            ("it", "attacks::a_bundle_cut_at_every_record_boundary_is_refused_as_truncated_and_leaves_nothing"),
            ("it", "mirror::pushes_are_accepted_only_when_signed_and_newer_and_junk_leaves_nothing"),
            ("it", "attacks::a_bundle_truncated_anywhere_or_with_trailing_bytes_is_refused"),
        ],
        added=[("it", "defences::a_push_rejected_after_all_its_objects_verified_leaves_nothing_behind")],
    ),
    dict(
        id="push-same-seq-accepted",
        defence="11 / a push must be newer",
        file="src/mirror/mod.rs",
        old="if info.already_current {",
        new="if false && info.already_current {",
        what="`Mirror::accept_push` accepts a push of the snapshot it already has",
        tests=[("it", "mirror::pushes_are_accepted_only_when_signed_and_newer_and_junk_leaves_nothing")],
    ),
    dict(
        id="mix-and-match-snapshot",
        defence="11 / mix-and-match between publishers",
        file="src/trust.rs",
        old="    if snapshot.site != site {\n        return Err(Error::wrong_publisher(&swhat, \"belongs to another publisher (mix-and-match)\"));",
        new="    if false && snapshot.site != site {\n        return Err(Error::wrong_publisher(&swhat, \"belongs to another publisher (mix-and-match)\"));",
        what="`trust::verify` accepts a snapshot whose site id is another publisher's",
        tests=[
            ("it", "attacks::a_snapshot_of_one_publisher_is_refused_under_another_publishers_key"),
            ("it", "hostile::another_publishers_snapshot_is_refused_as_mix_and_match"),
        ],
        added=[("it", "defences::a_snapshot_of_another_site_signed_with_a_shared_key_is_refused")],
    ),
    dict(
        id="bundle-trailing-data",
        defence="11 / malformed and truncated bundle files (trailing bytes)",
        file="src/archive/format.rs",
        old="if rest.read(&mut extra).map_err(|e| Error::decode(&self.name, e))? != 0 {",
        new="if false && rest.read(&mut extra).map_err(|e| Error::decode(&self.name, e))? != 0 {",
        what="`Records::finish` (archive/format.rs) ignores bytes after the bundle's zstd frame",
        tests=[
            ("it", "attacks::a_bundle_cut_at_every_record_boundary_is_refused_as_truncated_and_leaves_nothing"),
            ("it", "attacks::a_bundle_truncated_anywhere_or_with_trailing_bytes_is_refused"),
        ],
    ),
    dict(
        id="bundle-missing-object",
        defence="1, 11 / bundle missing an object",
        file="src/archive/read.rs",
        old="        if !target.is_some_and(|t| t.has_complete(RepoFile::Object(*h), *len)) {",
        new="        if false && !target.is_some_and(|t| t.has_complete(RepoFile::Object(*h), *len)) {",
        what="`archive::read` (`read_objects`, read.rs) accepts a bundle that leaves out an object (verify-only reads)",
        tests=[
            ("it", "attacks::a_bundle_cut_at_every_record_boundary_is_refused_as_truncated_and_leaves_nothing"),
            ("it", "vectors::damaged_bundles_are_rejected"),
            ("it", "vectors::negative_vectors_fail_as_documented"),
            ("it", "attacks::a_bundle_truncated_anywhere_or_with_trailing_bytes_is_refused"),
        ],
        added=[("it", "defences::a_bundle_that_leaves_out_an_object_is_refused")],
    ),
    # ---- 12. Authentic and fresh are separate -------------------------------------------
    dict(
        id="equivocation-silent",
        defence="12 / two snapshots with the same sequence number",
        file="src/trust.rs",
        old="if new.snapshot_id != current.snapshot_id {",
        new="if false && new.snapshot_id != current.snapshot_id {",
        what="`trust::check_advance` treats a different snapshot with the same seq as the same",
        tests=[
            ("it", "attacks::two_snapshots_with_one_sequence_number_are_reported_as_equivocation"),
            ("it", "hostile::two_upstreams_with_different_snapshots_of_one_sequence_number_are_reported_as_equivocation"),
        ],
    ),
    dict(
        id="equivocation-not-reported",
        defence="12 / equivocation is reported in the status",
        file="src/mirror/mod.rs",
        old='s.equivocation = Some(format!("{url}: {e}"));',
        new="let _ = &e;",
        what="`Mirror::sync_once` refuses an equivocating upstream but does not report it",
        tests=[("it", "hostile::two_upstreams_with_different_snapshots_of_one_sequence_number_are_reported_as_equivocation")],
    ),
    dict(
        id="equivocation-alarm-by-text",
        defence="12 / only equivocation raises the alarm",
        file="src/mirror/mod.rs",
        old="if e.is_equivocation() {\n                        s.equivocation = Some(format!(\"{url}: {e}\"));",
        new="if e.to_string().contains(\"seq\") {\n                        s.equivocation = Some(format!(\"{url}: {e}\"));",
        what="`Mirror::sync_once` decides the equivocation alarm from the error's text instead of `Error::Equivocation` (`is_equivocation`), so a replayed older head raises it too",
        tests=[
            ("it", "hostile::two_upstreams_with_different_snapshots_of_one_sequence_number_are_reported_as_equivocation"),
            ("it", "hostile::a_replayed_older_head_is_refused_as_a_rollback_and_the_newer_snapshot_stays_served"),
        ],
    ),
    dict(
        id="equivocation-context-hides",
        defence="12 / equivocation is reported in the status",
        file="src/error.rs",
        old="matches!(self.cause(), Error::Equivocation { .. })",
        new="matches!(self, Error::Equivocation { .. })",
        what="`Error::is_equivocation` (used by the mirror's alarm in mirror/mod.rs) no longer sees through an `Error::At` context, so an equivocation with context raises no alarm",
        tests=[
            ("lib", "error::tests::context_is_shown_first_and_seen_through_by_cause"),
            ("it", "hostile::two_upstreams_with_different_snapshots_of_one_sequence_number_are_reported_as_equivocation"),
        ],
    ),
    dict(
        id="newest-seen-ignored",
        defence="12 / mirrors record the newest head seen (freeze detection)",
        file="src/mirror/mod.rs",
        old="if let Some(seq) = seen_seq {",
        new="if let Some(seq) = seen_seq.filter(|_| false) {",
        what="`Mirror::sync_once` no longer records the newest sequence number an upstream offered",
        tests=[("it", "mirror::a_chain_of_mirrors_keeps_serving_and_passing_updates_after_the_origin_is_gone")],
        added=[("it", "defences::a_newer_snapshot_that_fails_to_sync_is_shown_as_newer_than_what_is_served")],
    ),
    # ---- 13. Readers leave few traces ----------------------------------------------------
    dict(
        id="csp-removed",
        defence="13 / CSP forbids third-party loads",
        file="src/mirror/serve/body.rs",
        old="    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));\n",
        new="    let _ = CSP;\n",
        what="responses no longer carry Content-Security-Policy",
        tests=[("it", "mirror::the_site_is_served_byte_exact_with_correct_http_semantics")],
    ),
    dict(
        id="referrer-policy-removed",
        defence="13 / Referrer-Policy: no-referrer",
        file="src/mirror/serve/body.rs",
        old="    h.insert(header::REFERRER_POLICY, HeaderValue::from_static(\"no-referrer\"));\n",
        new="",
        what="responses no longer carry Referrer-Policy: no-referrer",
        tests=[("it", "mirror::the_site_is_served_byte_exact_with_correct_http_semantics")],
    ),
    dict(
        id="reader-ip-logged",
        defence="13 / no reader IP addresses in logs",
        file="src/mirror/serve/route.rs",
        old="if m.config().log_client_addresses {",
        new="if true || m.config().log_client_addresses {",
        what="every request is logged with the reader's IP address",
        tests=[("it", "mirror::the_site_is_served_byte_exact_with_correct_http_semantics")],
        added=[("it", "defences::reader_addresses_are_not_logged_unless_the_operator_asks")],
    ),
    dict(
        id="limiter-ipv6-per-address",
        defence="6 / per-client rate limit (IPv6 /64)",
        file="src/mirror/serve/limiter.rs",
        old="IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))",
        new="IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]))",
        what="`limiter::key` keys an IPv6 client by its full address, so one /64 gets a fresh budget per address",
        tests=[("lib", "mirror::serve::limiter::tests::ipv6_clients_share_a_budget_per_64_and_ipv4_per_address")],
    ),
    # ---- attacks: Range requests ---------------------------------------------------------
    dict(
        id="range-count-cap",
        defence="attack / overlapping Range requests (count cap)",
        file="src/mirror/serve/range.rs",
        old="if ranges.len() > MAX_RANGES {",
        new="if false && ranges.len() > MAX_RANGES {",
        what="`range::parse` honours any number of ranges",
        tests=[("lib", "mirror::serve::range::tests::inverted_overlapping_malformed_or_too_many_ranges_are_ignored")],
    ),
    dict(
        id="range-overlap",
        defence="attack / overlapping Range requests",
        file="src/mirror/serve/range.rs",
        old="if ranges.windows(2).any(|w| w[1].start < w[0].end) {",
        new="if false && ranges.windows(2).any(|w| w[1].start < w[0].end) {",
        what="`range::parse` honours overlapping ranges",
        tests=[("lib", "mirror::serve::range::tests::inverted_overlapping_malformed_or_too_many_ranges_are_ignored")],
    ),
]

TARGET_ARGS = {"lib": ["--lib"], "it": ["--test", "tests"]}


def sh(cmd, timeout):
    """Runs cmd in its own process group; returns (returncode or None on timeout, seconds,
    combined output). On a timeout or an interruption the whole group (cargo, the test
    binary, the daemons it started) is killed."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                         env=dict(os.environ, CARGO_TERM_COLOR="never"))
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, time.monotonic() - t0, out.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        kill_group(p)
        out, _ = p.communicate()
        return None, time.monotonic() - t0, out.decode("utf-8", "replace")
    except BaseException:
        kill_group(p)
        raise


def kill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def check_snippet(m):
    path = m["file"]
    if not os.path.isfile(path):
        raise SystemExit(f"error: {m['id']}: {path} does not exist (run from the repository root)")
    with open(path, "rb") as f:
        src = f.read().decode("utf-8")
    n = src.count(m["old"])
    if n != 1:
        raise SystemExit(f"error: {m['id']}: the original snippet occurs {n} times in {path}, expected exactly once:\n"
                         f"{m['old']}")
    return src


def file_is_clean(path):
    return subprocess.run(["git", "diff", "--quiet", "HEAD", "--", path]).returncode == 0


def tests_of(m, baseline):
    return m["tests"] + ([] if baseline else m.get("added", []))


def commands(m, full, baseline):
    nice = ["nice", "-n", "10"]
    if full:
        return [nice + ["cargo", "test", "--locked"]], [nice + ["cargo", "test", "--locked", "--no-run"]]
    groups = {}
    for kind, flt in tests_of(m, baseline):
        groups.setdefault(kind, []).append(flt)
    builds, runs = [], []
    for kind in ("lib", "it"):
        if kind in groups:
            base = nice + ["cargo", "test", "--locked"] + TARGET_ARGS[kind]
            builds.append(base + ["--no-run"])
            runs.append(base + ["--"] + groups[kind])
    return runs, builds


def failing_tests(out):
    return sorted({l.split()[1] for l in out.splitlines()
                   if l.startswith("test ") and l.rstrip().endswith("FAILED") and len(l.split()) > 1})


def run_one(m, args):
    path = m["file"]
    original = check_snippet(m)
    if not file_is_clean(path):
        raise SystemExit(f"error: {path} has uncommitted changes; commit or stash them first")
    mutated = original.replace(m["old"], m["new"], 1)
    runs, builds = commands(m, args.full, args.baseline)
    t0 = time.monotonic()
    detail = ""
    try:
        with open(path, "wb") as f:
            f.write(mutated.encode("utf-8"))
        result = None
        for b in builds:
            rc, _, out = sh(b, args.timeout)
            if rc != 0:
                result = "INVALID"
                errs = [l for l in out.splitlines() if l.startswith("error")]
                detail = "; ".join(errs[:3]) or out[-500:]
                break
        if result is None:
            result = "MISSED"
            for r in runs:
                rc, _, out = sh(r, args.timeout)
                if rc is None:
                    result = "TIMEOUT"
                    detail = f"`{' '.join(r[3:])}` ran past {args.timeout} s"
                    break
                if rc != 0:
                    result = "CAUGHT"
                    failed = failing_tests(out)
                    detail += (" " if detail else "failed: ") + (
                        ", ".join(failed) if failed else out.strip().splitlines()[-1][:200])
                if args.verbose:
                    sys.stderr.write(out)
    finally:
        with open(path, "wb") as f:
            f.write(original.encode("utf-8"))
    if not file_is_clean(path):
        raise SystemExit(f"error: {path} was not restored exactly; check `git diff {path}`")
    return result, time.monotonic() - t0, detail, runs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated mutation ids")
    ap.add_argument("--list", action="store_true", help="list mutations (and check every snippet) and exit")
    ap.add_argument("--full", action="store_true", help="run the whole `cargo test --locked` per mutant")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per cargo command (default 900)")
    ap.add_argument("--out", help="also write the Markdown table to this file")
    ap.add_argument("--baseline", action="store_true",
                    help="run only the tests SECURITY.md names, not those added by this campaign")
    ap.add_argument("--verbose", action="store_true", help="echo test output to stderr")
    args = ap.parse_args()
    # SIGTERM, and SIGINT even when started in the background, end the run through
    # the `finally` that restores the mutated file.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    if not os.path.isfile("Cargo.toml") or not os.path.isdir("src"):
        raise SystemExit("error: run from the repository root")
    ids = [m["id"] for m in MUTATIONS]
    if len(set(ids)) != len(ids):
        raise SystemExit("error: duplicate mutation ids")
    chosen = MUTATIONS
    if args.only:
        want = args.only.split(",")
        unknown = [w for w in want if w not in ids]
        if unknown:
            raise SystemExit(f"error: unknown mutation id(s): {', '.join(unknown)}")
        chosen = [m for m in MUTATIONS if m["id"] in want]
    for m in chosen:
        check_snippet(m)
    if args.list:
        for m in chosen:
            print(f"{m['id']:32} {m['file']:22} {m['defence']}")
        print(f"{len(chosen)} mutations, every snippet found exactly once")
        return 0
    dirty = sorted({m["file"] for m in chosen if not file_is_clean(m["file"])})
    if dirty:
        raise SystemExit(f"error: uncommitted changes in {', '.join(dirty)}; commit or stash them first")

    rows, counts = [], {}
    started = time.monotonic()
    for i, m in enumerate(chosen, 1):
        sys.stderr.write(f"[{i}/{len(chosen)}] {m['id']} ... ")
        sys.stderr.flush()
        result, secs, detail, runs = run_one(m, args)
        sys.stderr.write(f"{result} ({secs:.0f} s) {detail}\n")
        counts[result] = counts.get(result, 0) + 1
        added = m.get("added", []) if not args.baseline else []
        tests = "whole suite" if args.full else "<br>".join(
            [("lib " if k == "lib" else "") + f"`{f}`" for k, f in m["tests"]]
            + [f"`{f}` (new)" for _, f in added])
        failed = detail.removeprefix("failed: ").replace(", ", " ").split() if result == "CAUGHT" else []
        by = "<br>".join(f"`{t}`" for t in failed) or detail.replace("|", "\\|")
        rows.append(f"| {m['id']} | {m['defence']} | `{m['file']}` | {m['what']} | {tests} | **{result}** | {secs:.0f} | {by} |")
    total = time.monotonic() - started
    caught = counts.get("CAUGHT", 0)
    lines = [
        "| id | defence | file | what was broken | tests run | result | s | tests that failed |",
        "|---|---|---|---|---|---|---:|---|",
        *rows,
        "",
        f"{len(chosen)} mutants: {caught} caught, {counts.get('MISSED', 0)} missed, "
        f"{counts.get('INVALID', 0)} invalid, {counts.get('TIMEOUT', 0)} timed out; {total / 60:.1f} min.",
    ]
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")
    return 0 if caught == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
