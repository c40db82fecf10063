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

/// The Cursor hook events of `hooks.json` version 1 (formats.md §C7): what `install cursor`
/// registers. `blueplane hook cursor` answers every one of them (and newer ones) with `{}`,
/// an output that expresses no opinion, so registering all of them changes nothing Cursor
/// does.
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

    #[test]
    fn twenty_distinct_cursor_events() {
        let mut v = super::CURSOR_EVENTS.to_vec();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), 20);
    }
}
