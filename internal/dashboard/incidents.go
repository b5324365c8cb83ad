package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/keywarden/keywarden/internal/admin"
	"github.com/keywarden/keywarden/internal/incident"
)

// Incidents are the incident records the incident pages show and change;
// *incident.Manager implements it.
type Incidents interface {
	List(ctx context.Context) ([]incident.Incident, error)
	Get(ctx context.Context, id string) (*incident.Incident, error)
	Note(ctx context.Context, id, actor, text string) (*incident.Incident, error)
	Check(ctx context.Context, id string, n int, actor string) (*incident.Incident, error)
	Close(ctx context.Context, id, actor, summary string) (*incident.Incident, error)
}

var _ Incidents = (*incident.Manager)(nil)

// incidentErr turns the incident package's errors into refusals.
func incidentErr(err error) error {
	switch {
	case errors.Is(err, incident.ErrNotFound):
		return errNotFoundPage
	case errors.Is(err, incident.ErrClosed):
		return &admin.APIError{Status: http.StatusConflict, Code: "closed", Msg: "the incident is closed"}
	case err != nil && strings.HasPrefix(err.Error(), "incident: "):
		// The package's own validation messages (empty note, unknown item).
		return badRequest(strings.TrimPrefix(err.Error(), "incident: "))
	}
	return err
}

func (h *Handler) incidents(c *call) error {
	if h.o.Incidents == nil {
		h.render(c, http.StatusOK, "incidents", "Incidents", "incidents", nil)
		return nil
	}
	list, err := h.o.Incidents.List(c.r.Context())
	if err != nil {
		return err
	}
	h.render(c, http.StatusOK, "incidents", "Incidents", "incidents", map[string]any{"Incidents": list})
	return nil
}

func (h *Handler) incident(c *call) error {
	if h.o.Incidents == nil {
		return errNotFoundPage
	}
	in, err := h.o.Incidents.Get(c.r.Context(), c.r.PathValue("id"))
	if err != nil {
		return incidentErr(err)
	}
	h.render(c, http.StatusOK, "incident", "Incident "+in.ID, "incidents", map[string]any{
		"Incident": in, "Notice": c.notice(),
	})
	return nil
}

// incidentChange records an operator's change to an incident in the audit
// log, makes it, and shows the incident again.
func (h *Handler) incidentChange(c *call, kind string, detail map[string]string, change func(ctx context.Context, id string) error) error {
	if h.o.Incidents == nil {
		return errNotFoundPage
	}
	id := c.r.PathValue("id")
	in, err := h.o.Incidents.Get(c.r.Context(), id)
	if err != nil {
		return incidentErr(err)
	}
	if in.Status == incident.StatusClosed {
		return incidentErr(incident.ErrClosed)
	}
	detail["incident"], detail["via"] = id, "dashboard"
	if err := h.o.Admin.Record(c.r.Context(), kind, c.p.Name, detail); err != nil {
		return err
	}
	if err := change(c.r.Context(), id); err != nil {
		return incidentErr(err)
	}
	return seeOther(c, "/ui/incidents/"+url.PathEscape(id), "Saved.")
}

func (h *Handler) incidentNote(c *call) error {
	text := c.r.PostFormValue("text")
	return h.incidentChange(c, "incident.note", map[string]string{}, func(ctx context.Context, id string) error {
		_, err := h.o.Incidents.Note(ctx, id, c.p.Name, text)
		return err
	})
}

func (h *Handler) incidentCheck(c *call) error {
	n, err := strconv.Atoi(c.r.PostFormValue("item"))
	if err != nil {
		return badRequest("item: a checklist item number")
	}
	return h.incidentChange(c, "incident.check", map[string]string{"item": strconv.Itoa(n)}, func(ctx context.Context, id string) error {
		_, err := h.o.Incidents.Check(ctx, id, n, c.p.Name)
		return err
	})
}

func (h *Handler) incidentClose(c *call) error {
	summary := c.r.PostFormValue("summary")
	return h.incidentChange(c, "incident.close", map[string]string{}, func(ctx context.Context, id string) error {
		_, err := h.o.Incidents.Close(ctx, id, c.p.Name, summary)
		return err
	})
}
