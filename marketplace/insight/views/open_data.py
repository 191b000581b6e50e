"""(routes added by this module's lane)"""
