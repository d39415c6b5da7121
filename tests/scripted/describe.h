#pragma once
// The trace format of scripted interaction tests: one deterministic, readable
// line per entry, message, hard state, snapshot or configuration. Defined once
// here so every command prints the same things the same way
// (docs/testing-scripted.md describes it).

#include <set>
#include <string>
#include <vector>

#include "consensus/raft.h"

namespace tenure::testing::scripted {

using namespace tenure::consensus;

/// `"x"` with C-style escapes for quotes, backslashes and non-printables.
std::string quote(const std::string& s);
/// `(1,2,3)`.
std::string describe_ids(const std::set<NodeId>& ids);
/// `voters=(1,2,3)` plus ` learners=(4)` when there are learners.
std::string describe_conf(const ConfState& conf);
/// `term/index EntryNormal "data"` or `term/index EntryConfChange add-voter 4`.
std::string describe_entry(const Entry& e);
/// `[2/6 EntryNormal "x", 2/7 EntryNormal "y"]`.
std::string describe_entries(const std::vector<Entry>& es);
/// `[first,last]`, or `empty` when first > last (everything is in the snapshot).
std::string describe_range(LogIndex first, LogIndex last);
/// `term=2 vote=1 commit=5` (vote `-` when none).
std::string describe_hard_state(const HardState& hs);
/// `index=12 term=2 voters=(1,2,3) data="x,y"`.
std::string describe_snapshot(const Snapshot& s);
/// `1->2 App term=2 index=5 logterm=1 entries=[...] commit=5`: only the
/// fields that mean something for the message's type.
std::string describe_message(const Message& m);
/// The error of a refused request: `NotLeader hint=1`, `ConfChangePending: ...`.
std::string describe_error(const Error<RaftError>& e);
/// The lines of a Ready, by section; empty sections are left out.
std::vector<std::string> describe_ready(const Ready& rd);

}  // namespace tenure::testing::scripted
