"""The engine: segments, campaigns, flows, reports and the durable jobs behind them."""
