"""The dialogue engine: flow model, loader and validator, matchers, and the pure step function."""
