"""Sensei's small common runtime: server bootstrap, auth, errors, config, database, paging."""
