"""Applications built on the library: what is done with a model, above the model zoo.

- :mod:`wally.apps.finder`: train the Wally finder and find Wally in a crowd scene.
"""
