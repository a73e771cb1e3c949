"""Hot issues (热点预警): categories and question terms rising well above their baseline."""
