"""The student release: starter code from the instructor's tree, stored check values, no answers."""
