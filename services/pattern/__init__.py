"""The pattern service: learned migration patterns and similarity search over them."""
