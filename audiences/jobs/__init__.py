"""Long jobs of the audience: CSV imports and exports, their pages and shared machinery."""
