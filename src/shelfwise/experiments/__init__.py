"""Measuring what a store cares about: impressions, attribution, live experiments.

`stats` holds the statistics every experiment report uses (intervals, p-values, sample-ratio
checks, CUPED, always-valid sequential p-values); import submodules directly
(`from shelfwise.experiments.stats import compare_means`).
"""
