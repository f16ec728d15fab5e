-- Ranked commands default to rank 1 (administrators only, COMMANDS.md §1.3). Channels,
-- casting and peer links are everyday commands, so ordinary users (rank 2) get them out of
-- the box; operators change or remove these rows with add_ranked_cmd / rm_ranked_cmd.
INSERT INTO command_ranks (module, command_name, host_rank) VALUES
    ('internal', 'add_ch', 2), ('internal', 'rm_ch', 2), ('internal', 'rename_ch', 2),
    ('internal', 'find_ch', 2), ('internal', 'ls_chs', 2), ('internal', 'invite_to_ch', 2),
    ('internal', 'accept_ch', 2), ('internal', 'decline_ch', 2),
    ('internal', 'remove_ch_member', 2), ('internal', 'set_member_level', 2),
    ('internal', 'ls_ch_members', 2), ('internal', 'add_sub_ch', 2),
    ('internal', 'rm_sub_ch', 2), ('internal', 'rename_sub_ch', 2),
    ('internal', 'set_sub_ch_level', 2), ('internal', 'set_active_flag', 2),
    ('internal', 'ls_sub_chs', 2), ('internal', 'open_sub_ch', 2),
    ('internal', 'close_sub_ch', 2), ('internal', 'ls_open_chs', 2),
    ('internal', 'add_rdonly_flag', 2), ('internal', 'rm_rdonly_flag', 2),
    ('internal', 'ls_rdonly_flags', 2), ('internal', 'cast', 2),
    ('internal', 'ping_peers', 2), ('internal', 'to_peer', 2),
    ('internal', 'p2p_request', 2), ('internal', 'p2p_open', 2),
    ('internal', 'p2p_close', 2), ('internal', 'ls_p2p', 2)
ON CONFLICT DO NOTHING;
