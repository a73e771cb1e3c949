"""Surge: many-help-one (多援一) overflow routing between a province's 12345 hotlines."""
