-- The queue's and the wait estimate's reads walk one state's conversations newest activity
-- first (list_conversations' order: COALESCE(updated_at, created_at) DESC, id DESC). With
-- only the state index, the 50 latest closed conversations that measure handling time
-- meant sorting every closed conversation: 300 ms at 100,000, inside the webhook's
-- transaction. This index hands them over in order.
CREATE INDEX conversations_recent ON conversations (state, COALESCE(updated_at, created_at), id);
