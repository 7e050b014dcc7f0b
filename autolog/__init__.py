"""autolog core: settings, errors, the item state machine, the store and media work.

Nothing in this package imports dramatiq or falcon; the layers above build on it.
"""
