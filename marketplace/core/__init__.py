"""The core every feature uses: database and commit, errors, audit, money, the clock, caching, notifications."""
