"""Caching and its invalidation: page generations, fragments, objects."""
