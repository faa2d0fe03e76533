"""The shopper simulator: offline A/B tests against a world whose ground truth is known.

* `world`: the demo store's catalogue and shoppers with hidden tastes, and the choice model
  (position bias, fatigue, click / cart / purchase probabilities, visits);
* `policies`: what shoppers are shown (registry models, random, epsilon-greedy exploration);
* `run`: the day loop and the in-process `LibraryDriver` (registry models);
* `engine`: `EngineDriver`, an in-process `Engine` over a store (the server's chain, no HTTP);
* `http`: `HttpDriver`, a running server over HTTP;
* `search`: `RerankDriver`, search arms that differ only in the learned re-ranker;
* `push`: push notifications (activity profiles, opens with fatigue, send-time policies,
  the smart-push planner's hours) and their report;
* `report`: the metrics per arm with intervals and every pairwise comparison.
"""
