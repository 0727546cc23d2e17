"""Triage lexicons: data files read by bot.triage (a package so they install with it)."""
