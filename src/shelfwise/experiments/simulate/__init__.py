"""The shopper simulator: offline A/B tests against a world whose ground truth is known.

* `world`: the demo store's catalogue and shoppers with hidden tastes, and the choice model
  (position bias, fatigue, click / cart / purchase probabilities, visits);
* `policies`: what shoppers are shown (registry models, random, epsilon-greedy exploration);
* `run`: the day loop and its drivers (in-process library, or the HTTP API in `http`);
* `report`: the metrics per arm with intervals and every pairwise comparison.
"""
