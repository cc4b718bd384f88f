"""The purchase commands (create, remove, has_purchased) and a user's purchase history."""
