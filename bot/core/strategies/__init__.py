"""Trading strategies: pure ``Strategy`` subclasses that turn books and events into intents."""
