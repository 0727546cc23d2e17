"""Triage lexicons: data files read by bot.triage.lexicon and bot.triage.model (a package
so they install with it)."""
