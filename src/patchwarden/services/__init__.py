"""Use cases. Each public function owns (or joins) one transaction."""
