"""spotfit's orchestration: pricing, cost tracking, jobs, cluster and the CLI that composes them."""
