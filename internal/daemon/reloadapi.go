package daemon

// Admin API types of POST /v1/reload. They belong with the other request
// and response types of the admin API (internal/adminapi) and move there
// unchanged.

// ReloadResult is the answer to a reload that was applied: every changed
// setting now runs. A reload that cannot be applied whole is refused
// (RestartRequiredError) and answers nothing of this.
type ReloadResult struct {
	// Result is "reloaded": the configuration file was read again and
	// whatever changed in it is applied.
	Result string `json:"result"`
	// Applied lists the changed settings by section ("xtr", "map-server",
	// "log", …) and configuration key ("xtr.database"); empty when the
	// file holds nothing new.
	Applied map[string][]string `json:"applied"`
	// Sites added, removed or changed at the Map-Server, by name.
	SitesAdded   []string `json:"sites-added,omitempty"`
	SitesRemoved []string `json:"sites-removed,omitempty"`
	SitesChanged []string `json:"sites-changed,omitempty"`
}
