"""(endpoints added by this module's lane)"""
