"""The campaign engine: audiences resolved at send time (`audience`), the durable send job
(`dispatcher`), recipient estimation (`estimation`) and smart send time (`smart_send_time`)."""
