"""Small runnable examples that ship with wally."""
