//! The hook events each client knows (Claude Code, Cursor), as `install` registers them and
//! the deriver reads them.

/// The 33 hook events of Claude Code 2.1.328 (`../shared/docs/claude-code-2.1.md` §2).
/// Newer events are accepted as they come; this list is what `install claude` registers.
pub const CLAUDE_EVENTS: &[&str] = &[
    "SessionStart",
    "SessionEnd",
    "Setup",
    "UserPromptSubmit",
    "UserPromptExpansion",
    "MessageDisplay",
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "PostToolBatch",
    "PermissionRequest",
    "PermissionDenied",
    "Notification",
    "Stop",
    "StopFailure",
    "SubagentStart",
    "SubagentStop",
    "TaskCreated",
    "TaskCompleted",
    "TeammateIdle",
    "PreCompact",
    "PostCompact",
    "PreModelSwitch",
    "PostModelSwitch",
    "InstructionsLoaded",
    "CwdChanged",
    "FileChanged",
    "ConfigChange",
    "DirectoryAdded",
    "WorktreeCreate",
    "WorktreeRemove",
    "Elicitation",
    "ElicitationResult",
];

/// Events whose hook output Claude Code acts on beyond logging, so that registering a
/// telemetry hook would change what Claude Code does: a `WorktreeCreate` hook replaces git's
/// worktree creation (its stdout must be the new path). `install` leaves them out; the hook
/// command still accepts them when a user registers them by hand.
pub const CLAUDE_EVENTS_NOT_INSTALLED: &[&str] = &["WorktreeCreate"];

/// The 20 hook events of Cursor's `hooks.json` version 1 (`../shared/docs/formats.md` §C7),
/// from the six of Cursor 1.7 to the tool, sub-agent, compaction and Tab events of later
/// versions. This list is what `install cursor` registers; Cursor ignores names it does not
/// know, so an older Cursor is not troubled by the newer ones.
pub const CURSOR_EVENTS: &[&str] = &[
    "beforeSubmitPrompt",
    "afterAgentResponse",
    "afterAgentThought",
    "beforeShellExecution",
    "afterShellExecution",
    "beforeMCPExecution",
    "afterMCPExecution",
    "beforeReadFile",
    "afterFileEdit",
    "stop",
    "sessionStart",
    "sessionEnd",
    "preToolUse",
    "postToolUse",
    "postToolUseFailure",
    "subagentStart",
    "subagentStop",
    "preCompact",
    "beforeTabFileRead",
    "afterTabFileEdit",
];

#[cfg(test)]
mod tests {
    #[test]
    fn twenty_distinct_cursor_events() {
        let mut v = super::CURSOR_EVENTS.to_vec();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), 20);
    }

    #[test]
    fn thirty_three_distinct_events() {
        let mut v = super::CLAUDE_EVENTS.to_vec();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), 33);
        assert!(
            super::CLAUDE_EVENTS_NOT_INSTALLED
                .iter()
                .all(|e| super::CLAUDE_EVENTS.contains(e))
        );
    }
}
