#pragma once
// Snapshots live in files of their own beside raft.db
// (data_dir/snapshot-<index>-<term>.snap, the state machine's bytes only);
// raft.db names the current one and holds its index, term, configuration
// and CRC32C. A file is written whole (temporary name, fsync, rename, fsync
// of the directory) before the row that names it commits, so a crash leaves
// at worst an orphan, removed at the next open.
//
// Why not a BLOB in raft.db, as before: a 30-130 MB write inside the log's
// database held its only writer for 0.4-0.5 s (plus a WAL checkpoint of the
// same size later), and every Ready waited behind it, heartbeats included.
// A file is written off to the side by whoever made the snapshot, and the
// row that switches to it is a small transaction.
//
// Every function is fatal (storage_fatal) on an I/O failure, like the rest
// of the storage. Thread-safe: none touches shared state.

#include <string>
#include <string_view>

#include "consensus/message.h"

namespace tenure::storage {

/// "snapshot-<index, 20 digits>-<term>.snap".
std::string snapshot_file_name(consensus::LogIndex index, consensus::Term term);

/// Writes `data` as data_dir/`name`, durably; replaces a file of that name.
void write_snapshot_file(const std::string& data_dir, const std::string& name, std::string_view data);

/// The bytes of data_dir/`name`; fatal (naming the file) if it cannot be read.
std::string read_snapshot_file(const std::string& data_dir, const std::string& name);

/// Removes snapshot files other than `keep`, and with `temporaries` the
/// leftovers of interrupted writes too (only at open: meanwhile a snapshot
/// may be being written beside the running member).
void remove_snapshot_files_except(const std::string& data_dir, const std::string& keep, bool temporaries = false);

}  // namespace tenure::storage
