"""Examples of Sensei API clients (run them as scripts; see README "Example agent")."""
