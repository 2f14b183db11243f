# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_iggy_warden_global_optspecs
    string join \n h/help V/version
end

function __fish_iggy_warden_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_iggy_warden_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_iggy_warden_using_subcommand
    set -l cmd (__fish_iggy_warden_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c iggy-warden -n "__fish_iggy_warden_needs_command" -s h -l help -d 'Print help'
complete -c iggy-warden -n "__fish_iggy_warden_needs_command" -s V -l version -d 'Print version'
complete -c iggy-warden -n "__fish_iggy_warden_needs_command" -f -a "check" -d 'Verify a data directory without changing anything (exit 0 healthy and ready to start, 1 problems found, 2 could not check)'
complete -c iggy-warden -n "__fish_iggy_warden_needs_command" -f -a "recover" -d 'Start-up hook: finish and make repairs, then exit 0 when iggy-server may start, 3 when the mode forbids a needed repair (nothing changed), 2 on errors'
complete -c iggy-warden -n "__fish_iggy_warden_needs_command" -f -a "replay" -d 'Show the journal\'s history and the repair plan (dry run); --apply executes it'
complete -c iggy-warden -n "__fish_iggy_warden_needs_command" -f -a "restore" -d 'Put back the bytes repairs quarantined'
complete -c iggy-warden -n "__fish_iggy_warden_needs_command" -f -a "watch" -d 'The sidecar: journal segment events while iggy-server runs'
complete -c iggy-warden -n "__fish_iggy_warden_needs_command" -f -a "status" -d 'Ask the running sidecar for its counters and the alerts in force (exit 0 no alert, 1 alerts in force, 2 no sidecar answers)'
complete -c iggy-warden -n "__fish_iggy_warden_needs_command" -f -a "journal" -d 'Inspect the journal: show its records, verify it, compact it'
complete -c iggy-warden -n "__fish_iggy_warden_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand check" -l data-dir -d 'The iggy-server data directory (its `system.path`, e.g. local_data)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand check" -l json -d 'Print one JSON object instead of text'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand check" -s h -l help -d 'Print help'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand recover" -l data-dir -d 'The iggy-server data directory (its `system.path`, e.g. local_data)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand recover" -l state-dir -d 'Folder for the journal and the quarantine [default: $STATE_DIRECTORY, else <data-dir>.warden beside the data directory]. Never inside the data directory' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand recover" -l config -d 'TOML configuration file (keys: data_dir, state_dir, mode, reset_offsets_ahead, checkpoint_interval_ms, verify_interval_ms, stall_alert_checkpoints, coverage_mib_per_sec, metrics_*)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand recover" -l mode -d 'Recovery mode: tolerate-tail (repair crash tails, refuse anything else), point-in-time (cut each partition at its first damage), salvage (keep every message whose XXH3 is valid, wherever found, re-laying a damaged partition from its first damaged segment; exit 2, nothing changed, when the disk lacks room) or absolute (repair nothing) [default: tolerate-tail, or `mode` in the config file; the packaged /etc/iggy-warden/config.toml sets salvage]' -r
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand recover" -l json -d 'Print one JSON object instead of text'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand recover" -l force -d 'Change files even though another process has some open'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand recover" -l reset-offsets-ahead -d 'After the repair, move each consumer or group offset stored past its partition\'s last message back to that message, so the consumer\'s next message is the next one produced (0.6.0 would skip as many); the old file is quarantined, `restore` puts it back [default: no, or `reset_offsets_ahead` in the config file]'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand recover" -s h -l help -d 'Print help'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand replay" -l data-dir -d 'The iggy-server data directory (its `system.path`, e.g. local_data)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand replay" -l state-dir -d 'Folder for the journal and the quarantine [default: $STATE_DIRECTORY, else <data-dir>.warden beside the data directory]. Never inside the data directory' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand replay" -l config -d 'TOML configuration file (keys: data_dir, state_dir, mode, reset_offsets_ahead, checkpoint_interval_ms, verify_interval_ms, stall_alert_checkpoints, coverage_mib_per_sec, metrics_*)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand replay" -l mode -d 'Recovery mode, as for `recover`: tolerate-tail, point-in-time, salvage or absolute [default: tolerate-tail, or `mode` in the config file]' -r
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand replay" -l partition -d 'Limit to one stream, topic or partition: `S`, `S/T` or `S/T/P`' -r
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand replay" -l apply -d 'Execute the plan (default: only show it)'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand replay" -l force -d 'Change files even though another process has some open (with --apply)'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand replay" -l reset-offsets-ahead -d 'After the repair, move each consumer or group offset stored past its partition\'s last message back to that message, as `recover` does; a dry run shows those of the partitions its plan leaves alone or only cuts [default: no, or `reset_offsets_ahead` in the config file]'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand replay" -l json -d 'Print JSON instead of text'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand replay" -s h -l help -d 'Print help'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand restore" -l data-dir -d 'The iggy-server data directory (its `system.path`, e.g. local_data)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand restore" -l state-dir -d 'Folder for the journal and the quarantine [default: $STATE_DIRECTORY, else <data-dir>.warden beside the data directory]. Never inside the data directory' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand restore" -l config -d 'TOML configuration file (keys: data_dir, state_dir, mode, reset_offsets_ahead, checkpoint_interval_ms, verify_interval_ms, stall_alert_checkpoints, coverage_mib_per_sec, metrics_*)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand restore" -l list -d 'List what the quarantine holds instead'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand restore" -l json -d 'Print one JSON object instead of text: with --list, every quarantined repair (id, action, reason, file, byte range, XXH3 as 0x-prefixed hex, created_file, bytes); otherwise what was restored'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand restore" -l force -d 'Change files even though another process has some open'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand restore" -s h -l help -d 'Print help'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand watch" -l data-dir -d 'The iggy-server data directory (its `system.path`, e.g. local_data)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand watch" -l state-dir -d 'Folder for the journal and the quarantine [default: $STATE_DIRECTORY, else <data-dir>.warden beside the data directory]. Never inside the data directory' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand watch" -l config -d 'TOML configuration file (keys: data_dir, state_dir, mode, reset_offsets_ahead, checkpoint_interval_ms, verify_interval_ms, stall_alert_checkpoints, coverage_mib_per_sec, metrics_*)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand watch" -l checkpoint-interval-ms -d 'How often verified bytes of open segments are checkpointed, in milliseconds [default: `checkpoint_interval_ms` in the config file, else 1000]' -r
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand watch" -l verify-interval-ms -d 'How often newly written bytes are read and verified, in milliseconds: alerts come this soon after the damage reaches the disk; capped at the checkpoint interval [default: `verify_interval_ms` in the config file, else 100]' -r
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand watch" -l stall-alert-checkpoints -d 'Checkpoint intervals a partition\'s newest segment may end in a message written in part, with nothing written, before the stalled-write alert [default: `stall_alert_checkpoints` in the config file, else 10]' -r
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand watch" -l coverage-mib-per-sec -d 'MiB per second the background coverage pass may read from open segments the journal does not vouch for yet; 0: no limit [default: `coverage_mib_per_sec` in the config file, else 32]' -r
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand watch" -s h -l help -d 'Print help'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand status" -l data-dir -d 'The iggy-server data directory (its `system.path`, e.g. local_data)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand status" -l state-dir -d 'Folder for the journal and the quarantine [default: $STATE_DIRECTORY, else <data-dir>.warden beside the data directory]. Never inside the data directory' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand status" -l config -d 'TOML configuration file (keys: data_dir, state_dir, mode, reset_offsets_ahead, checkpoint_interval_ms, verify_interval_ms, stall_alert_checkpoints, coverage_mib_per_sec, metrics_*)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand status" -l json -d 'Print the sidecar\'s JSON answer instead of text'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand status" -s h -l help -d 'Print help'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and not __fish_seen_subcommand_from show verify compact help" -l data-dir -d 'The iggy-server data directory (its `system.path`, e.g. local_data)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and not __fish_seen_subcommand_from show verify compact help" -l state-dir -d 'Folder for the journal and the quarantine [default: $STATE_DIRECTORY, else <data-dir>.warden beside the data directory]. Never inside the data directory' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and not __fish_seen_subcommand_from show verify compact help" -l config -d 'TOML configuration file (keys: data_dir, state_dir, mode, reset_offsets_ahead, checkpoint_interval_ms, verify_interval_ms, stall_alert_checkpoints, coverage_mib_per_sec, metrics_*)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and not __fish_seen_subcommand_from show verify compact help" -s h -l help -d 'Print help'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and not __fish_seen_subcommand_from show verify compact help" -f -a "show" -d 'Print the journal\'s records, oldest first'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and not __fish_seen_subcommand_from show verify compact help" -f -a "verify" -d 'Check every record and the derived state. Exit status: 0 sound, 1 problems found, 2 journal unreadable'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and not __fish_seen_subcommand_from show verify compact help" -f -a "compact" -d 'Drop the records of deleted segments and superseded checkpoints'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and not __fish_seen_subcommand_from show verify compact help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from show" -l segment -d 'Only records about this segment, given as stream/topic/partition@start_offset (repairs of its files included)' -r
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from show" -l since -d 'Start at this sequence number' -r
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from show" -l data-dir -d 'The iggy-server data directory (its `system.path`, e.g. local_data)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from show" -l state-dir -d 'Folder for the journal and the quarantine [default: $STATE_DIRECTORY, else <data-dir>.warden beside the data directory]. Never inside the data directory' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from show" -l config -d 'TOML configuration file (keys: data_dir, state_dir, mode, reset_offsets_ahead, checkpoint_interval_ms, verify_interval_ms, stall_alert_checkpoints, coverage_mib_per_sec, metrics_*)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from show" -l json -d 'Print one JSON object per line instead of text'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from verify" -l data-dir -d 'The iggy-server data directory (its `system.path`, e.g. local_data)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from verify" -l state-dir -d 'Folder for the journal and the quarantine [default: $STATE_DIRECTORY, else <data-dir>.warden beside the data directory]. Never inside the data directory' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from verify" -l config -d 'TOML configuration file (keys: data_dir, state_dir, mode, reset_offsets_ahead, checkpoint_interval_ms, verify_interval_ms, stall_alert_checkpoints, coverage_mib_per_sec, metrics_*)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from compact" -l data-dir -d 'The iggy-server data directory (its `system.path`, e.g. local_data)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from compact" -l state-dir -d 'Folder for the journal and the quarantine [default: $STATE_DIRECTORY, else <data-dir>.warden beside the data directory]. Never inside the data directory' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from compact" -l config -d 'TOML configuration file (keys: data_dir, state_dir, mode, reset_offsets_ahead, checkpoint_interval_ms, verify_interval_ms, stall_alert_checkpoints, coverage_mib_per_sec, metrics_*)' -r -F
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from compact" -s h -l help -d 'Print help'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from help" -f -a "show" -d 'Print the journal\'s records, oldest first'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Check every record and the derived state. Exit status: 0 sound, 1 problems found, 2 journal unreadable'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from help" -f -a "compact" -d 'Drop the records of deleted segments and superseded checkpoints'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand journal; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand help; and not __fish_seen_subcommand_from check recover replay restore watch status journal help" -f -a "check" -d 'Verify a data directory without changing anything (exit 0 healthy and ready to start, 1 problems found, 2 could not check)'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand help; and not __fish_seen_subcommand_from check recover replay restore watch status journal help" -f -a "recover" -d 'Start-up hook: finish and make repairs, then exit 0 when iggy-server may start, 3 when the mode forbids a needed repair (nothing changed), 2 on errors'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand help; and not __fish_seen_subcommand_from check recover replay restore watch status journal help" -f -a "replay" -d 'Show the journal\'s history and the repair plan (dry run); --apply executes it'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand help; and not __fish_seen_subcommand_from check recover replay restore watch status journal help" -f -a "restore" -d 'Put back the bytes repairs quarantined'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand help; and not __fish_seen_subcommand_from check recover replay restore watch status journal help" -f -a "watch" -d 'The sidecar: journal segment events while iggy-server runs'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand help; and not __fish_seen_subcommand_from check recover replay restore watch status journal help" -f -a "status" -d 'Ask the running sidecar for its counters and the alerts in force (exit 0 no alert, 1 alerts in force, 2 no sidecar answers)'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand help; and not __fish_seen_subcommand_from check recover replay restore watch status journal help" -f -a "journal" -d 'Inspect the journal: show its records, verify it, compact it'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand help; and not __fish_seen_subcommand_from check recover replay restore watch status journal help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand help; and __fish_seen_subcommand_from journal" -f -a "show" -d 'Print the journal\'s records, oldest first'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand help; and __fish_seen_subcommand_from journal" -f -a "verify" -d 'Check every record and the derived state. Exit status: 0 sound, 1 problems found, 2 journal unreadable'
complete -c iggy-warden -n "__fish_iggy_warden_using_subcommand help; and __fish_seen_subcommand_from journal" -f -a "compact" -d 'Drop the records of deleted segments and superseded checkpoints'
