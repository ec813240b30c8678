-- Indexes for the missed-call rules ----------------------------------------

-- Recording a finished call looks up the caller's open missed-call inquiries
-- and, when the call settles them, their open tasks. Without these the first
-- walked every open inquiry and the second every task: ~180 ms per call on a
-- clinic of 200k people and 1M calls, and the next call's card waited.
CREATE INDEX inquiries_missed_open_by_phone ON inquiries(phone_e164, created_at)
    WHERE source = 'missed_call' AND status <> 'closed' AND deleted_at IS NULL;
CREATE INDEX tasks_by_inquiry ON tasks(inquiry_id) WHERE inquiry_id IS NOT NULL;
