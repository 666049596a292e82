"""spotfit's training pipeline: one module per technique; only `recipe` imports Ray."""
