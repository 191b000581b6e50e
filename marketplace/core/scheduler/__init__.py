"""The scheduler: periodic work that runs on its own, once per due time however many processes run
it (a lease row in the database), each run recorded for the authority's administrators.

Features declare their jobs in their own ``jobs.py`` with ``registry.job``; the app factory imports
those modules, so the core never imports a feature.
"""
