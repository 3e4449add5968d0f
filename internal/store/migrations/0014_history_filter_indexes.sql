-- The alarm history's filters by resource (its id, name or key) and by
-- alarm type had no index: a request for one host's alarms over a long
-- window read every occurrence of the window, on a large history a scan
-- of millions of rows. Each column gets its own index (191-character
-- prefixes, as the other key columns), so that the three-way OR of the
-- resource filter is an index merge. Re-runnable (IF NOT EXISTS).
ALTER TABLE alarm_history
    ADD KEY IF NOT EXISTS alarm_history_type (alarm_type(191), raised_seq),
    ADD KEY IF NOT EXISTS alarm_history_resource_id (resource_id(191)),
    ADD KEY IF NOT EXISTS alarm_history_resource_name (resource_name(191)),
    ADD KEY IF NOT EXISTS alarm_history_resource_key (resource_key(191));
